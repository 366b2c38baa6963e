"""The demo's views: one of each kind, each receiving its resources through @inject."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifespan_container import Provide, inject
from lifespan_container.conf import lifespan_settings
from lifespan_container.health import CheckResult, run_checks
from lifespan_container.lifecycle import ResourceLifecycle
from lifespan_container.runtime import get_runtime
from weather.containers import Container
from weather.database import Connection, Database

CACHE_SECONDS = 60
MAX_TRIP = 20
"""Stations one trip may list."""


@inject
async def forecast(
    request: HttpRequest,
    city: str,
    http: httpx.AsyncClient = Provide[Container.http],
    cache: Any = Provide[Container.cache],
) -> JsonResponse:
    """An async function view: the upstream API through the shared client, cached in Redis."""
    key = f"weather-demo:forecast:{city.lower()}"
    if cache is not None and (cached := await cache.get(key)) is not None:
        return JsonResponse({**json.loads(cached), "cache": "hit"})
    response = await http.get(f"/forecast/{city}")
    response.raise_for_status()
    body = response.json()
    if cache is not None:
        await cache.set(key, json.dumps(body), ex=CACHE_SECONDS)
    return JsonResponse({**body, "cache": "miss" if cache is not None else "off"})


class StationList(View):
    """A class-based view: the stations, from the database resource."""

    @inject
    async def get(
        self, request: HttpRequest, db: Annotated[Database, Provide[Container.db]]
    ) -> JsonResponse:
        rows = await db.fetch("SELECT code, name, latitude FROM stations ORDER BY latitude")
        return JsonResponse(
            {
                "backend": db.backend,
                "stations": [{"code": c, "name": n, "latitude": lat} for c, n, lat in rows],
            }
        )


@inject
def report(request: HttpRequest, http: httpx.AsyncClient = Provide[Container.http]) -> HttpResponse:
    """A sync view: it calls the async client on the serving loop with async_to_sync."""
    lines = ["Weather report"]
    for city in ("Oslo", "Bergen", "Tromsø"):
        body = async_to_sync(http.get)(f"/forecast/{city}").json()
        lines.append(f"{city}: {body['temperature_c']} °C, wind {body['wind_ms']} m/s")
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


class StationDetail(APIView):
    """A Django REST framework view (DRF views are sync): async resources via async_to_sync."""

    @inject
    def get(
        self,
        request: Request,
        code: str,
        db: Database = Provide[Container.db],
        http: httpx.AsyncClient = Provide[Container.http],
    ) -> Response:
        rows = async_to_sync(db.fetch)(
            "SELECT code, name FROM stations WHERE code = ?", code.upper()
        )
        if not rows:
            return Response({"detail": f"No station {code!r}."}, status=404)
        ((station_code, name),) = rows
        forecast = async_to_sync(http.get)(f"/forecast/{name}").json()
        return Response({"code": station_code, "name": name, "forecast": forecast})


@require_http_methods(["GET", "POST"])
@inject
async def visits(
    request: HttpRequest, conn: Annotated[Connection, Provide[Container.conn]]
) -> JsonResponse:
    """A request-scoped connection: several statements in one transaction, all or nothing.

    POST ``{"visitor": "Ada", "stations": ["OSL", "TOS"]}`` records a trip: one
    visit per station, each inserted on the request's connection. A station that
    does not exist fails the request (400) after the visits before it were
    inserted: the failure is thrown into ``conn``, its transaction rolls back, and
    none of the trip is recorded. GET lists the latest visits.
    """
    if request.method == "POST":
        visitor, codes = _trip(request)
        when = datetime.now(UTC).isoformat(timespec="seconds")
        for code in codes:
            if not await conn.fetch("SELECT 1 FROM stations WHERE code = ?", code):
                raise BadRequest(f"No station {code!r}: nothing of this trip is recorded.")
            await conn.execute(
                "INSERT INTO station_visits (station, visitor, visited_at) VALUES (?, ?, ?)",
                code,
                visitor,
                when,
            )
        # The same transaction: these counts include the rows inserted just above,
        # which other connections see only once it commits (after the response).
        counts = await conn.fetch(
            "SELECT station, count(*) FROM station_visits WHERE visitor = ? "
            "GROUP BY station ORDER BY station",
            visitor,
        )
        return JsonResponse(
            {"visitor": visitor, "recorded": codes, "visits": dict(counts)},
            status=201,
            json_dumps_params={"ensure_ascii": False},
        )
    rows = await conn.fetch(
        "SELECT v.station, s.name, v.visitor, v.visited_at FROM station_visits v "
        "JOIN stations s ON s.code = v.station ORDER BY v.visited_at DESC, v.station LIMIT 20"
    )
    return JsonResponse(
        {
            "visits": [
                {"station": code, "name": name, "visitor": visitor, "visited_at": when}
                for code, name, visitor, when in rows
            ]
        },
        json_dumps_params={"ensure_ascii": False},
    )


def _trip(request: HttpRequest) -> tuple[str, list[str]]:
    """The visitor and the station codes a POST to /visits sends; BadRequest otherwise."""
    try:
        body = json.loads(request.body)
    except ValueError:
        body = None
    visitor = body.get("visitor") if isinstance(body, dict) else None
    codes = body.get("stations") if isinstance(body, dict) else None
    if (
        not isinstance(visitor, str)
        or not visitor.strip()
        or not isinstance(codes, list)
        or not 0 < len(codes) <= MAX_TRIP
        or not all(isinstance(code, str) for code in codes)
    ):
        msg = (
            'Send JSON like {"visitor": "Ada", "stations": ["OSL", "TOS"]}: '
            f"a name and 1 to {MAX_TRIP} station codes."
        )
        raise BadRequest(msg)
    return visitor.strip()[:100], [code.upper() for code in codes]


class _Echo:
    """A file whose ``write`` returns the line: ``csv.writer`` then formats one row."""

    def write(self, line: str) -> str:
        return line


@require_safe
@inject
async def visits_csv(
    request: HttpRequest, conn: Annotated[Connection, Provide[Container.conn]]
) -> StreamingHttpResponse:
    """A streaming response read from the request's connection while it is sent.

    The view returns at once; the rows are read (PostgreSQL: through a server-side
    cursor) as the body goes out. ``conn`` stays open until the last chunk was
    sent, and only then is its transaction ended and the connection given back.
    """
    writer = csv.writer(_Echo())

    async def lines() -> AsyncIterator[str]:
        yield writer.writerow(["station", "visitor", "visited_at"])
        query = (
            "SELECT station, visitor, visited_at FROM station_visits "
            "ORDER BY visited_at, station, visitor"
        )
        # aclosing: a client that leaves mid-stream closes the cursor now, before
        # the connection's transaction ends, not whenever the garbage collector runs.
        async with contextlib.aclosing(conn.stream(query)) as rows:
            async for row in rows:
                yield writer.writerow(row)

    return StreamingHttpResponse(
        lines(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'inline; filename="visits.csv"'},
    )


PAGES = [
    ("/weather/Oslo", "async function view: the upstream API through the shared httpx client"),
    ("/stations/", "class-based view: rows from the database resource"),
    ("/report", "sync view: the async client through async_to_sync"),
    ("/api/stations/OSL", "Django REST framework view: database and HTTP client"),
    (
        "/visits",
        (
            "request-scoped connection: POST a trip, several inserts in one transaction "
            "that rolls back if the request fails; GET lists the visits"
        ),
    ),
    (
        "/visits.csv",
        (
            "streaming response: rows read from the connection of the request while they "
            "are sent; it goes back to the database after the last chunk"
        ),
    ),
]
PROBES = [
    ("/health/live", "liveness: 200 while the process answers; checks no resource"),
    ("/health/ready", "readiness: 200 while the phase is serving, else 503"),
    ("/health/", "every health check as JSON: 200 only when all pass while serving"),
    ("/?format=json", "this page as JSON (or send Accept: application/json)"),
]
RESOURCES = {
    "http": "httpx client for the weather API (UPSTREAM_URL)",
    "db": "the stations database: SQLite, or PostgreSQL when DATABASE_URL names one",
    "cache": "Redis cache of forecasts: off (None) unless REDIS_URL is set",
}
PHASES = {
    "idle": "No lifespan has run in this process, so nothing is open. Serve it under an ASGI "
    "server with the lifespan on: uvicorn weather.asgi:application --lifespan on.",
    "starting": "The lifespan startup is opening the resources.",
    "serving": "Startup completed: the resources are open and the views use them.",
    "stopping": "Shutdown began: the resources are closing.",
    "stopped": "Shutdown completed: every resource is closed.",
}
"""Each lifespan phase, in order, with what it means for the resources."""


@never_cache
@require_safe
async def index(request: HttpRequest) -> HttpResponse:
    """What a person opens first: the lifespan phase, every resource's health, the pages.

    Always 200 (it is a page, not a probe: /health/ answers 503 for machines). The
    health data is the library's own: ``run_checks``, as the /health/ view runs it.
    """
    runtime = get_runtime()
    lifecycle = runtime.lifecycle
    results = (
        await run_checks(lifecycle, lifespan_settings().health_check_timeout) if lifecycle else []
    )
    resources = [_row(lifecycle, result) for result in results]
    if request.GET.get("format") == "json" or (
        request.get_preferred_type(["text/html", "application/json"]) == "application/json"
    ):
        return JsonResponse(
            {
                "phase": runtime.phase,
                "resources": {row.pop("name"): row for row in resources},
                "pages": [{"url": url, "description": text} for url, text in PAGES],
            },
            json_dumps_params={"ensure_ascii": False},
        )
    failing = sum(row["status"] in {"failing", "timeout"} for row in resources)
    return render(
        request,
        "weather/index.html",
        {
            "phase": runtime.phase,
            "phase_text": PHASES.get(runtime.phase, ""),
            "phases": list(PHASES),
            "resources": resources,
            "failing": failing,
            "unchecked": sum(row["status"] == "not open" for row in resources),
            "opened": sum(row["state"] == "open" for row in resources),
            "pages": PAGES,
            "probes": PROBES,
            "debug": settings.DEBUG,
        },
    )


def _row(lifecycle: ResourceLifecycle | None, result: CheckResult) -> dict[str, Any]:
    """One resource as the page shows it; what was checked and how it failed only with DEBUG.

    As in the /health/ view: a check's error can name hosts, users and queries.
    """
    is_open = lifecycle is not None and lifecycle.is_open(result.name)
    row: dict[str, Any] = {
        "name": result.name,
        "description": RESOURCES.get(result.name, ""),
        "state": "open" if is_open else "not open",
        "status": result.status,
        "latency_ms": None if result.latency is None else round(result.latency * 1000, 2),
    }
    if settings.DEBUG:
        row["check"] = result.check
        row["error"] = result.error
    return row
