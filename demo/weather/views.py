"""The demo's views: one of each kind, each receiving its resources through @inject."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifespan_container import Provide, inject
from weather.containers import Container
from weather.database import Database

CACHE_SECONDS = 60


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


PAGES = [
    ("/weather/Oslo", "async function view: the upstream API through the shared httpx client"),
    ("/stations/", "class-based view: rows from the database resource"),
    ("/report", "sync view: the async client through async_to_sync"),
    ("/api/stations/OSL", "Django REST framework view: database and HTTP client"),
]


async def index(request: HttpRequest) -> HttpResponse:
    """Links to every page of the demo."""
    items = "".join(f'<li><a href="{url}">{url}</a>: {text}</li>' for url, text in PAGES)
    return HttpResponse(
        "<!doctype html><title>Weather demo</title><h1>django-lifespan-container demo</h1>"
        f"<ul>{items}</ul>"
    )
