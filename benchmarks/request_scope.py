"""CPU cost of one request-scoped resource per request, against FastAPI's yield dependency.

One process, one in-process ASGI harness (the application called directly with a
scope, ``receive`` and ``send``), five cases in two groups; in every round each
case of a group serves the same number of requests, the cases taking turns in
runs of ten (the order rotates from round to round):

- Django through ``LifespanHandler`` (the real lifespan started, no middleware):
  an async ``@inject`` view given an app-scoped resource, and the same view also
  given one ``RequestResource`` (an async generator yielding an object);
- the first view through vanilla Django's ``ASGIHandler``: a request that uses no
  request-scoped provider, ours against vanilla;
- FastAPI (if installed): the same endpoint given an app-scoped value through an
  async dependency, and also given one async ``yield`` dependency.

The figures per request are process CPU time (``time.process_time()``, every
thread of the process), the median over the rounds. Each added cost is the
difference of the medians of the per-request CPU time of the event loop's thread
(``time.thread_time()``), with and without: both the request resource and
FastAPI's dependency run on that thread, and the median is not moved by the
random cost of Django's per-request worker threads or of a garbage collection.
The per-round process CPU difference is printed beside it. Targets (reported, never
enforced): ours added <= 0.5 x FastAPI's added, and <= 2 % of the Django request.

    python benchmarks/request_scope.py [--rounds 30] [--requests 150]
"""

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

settings.configure(
    SECRET_KEY="benchmarks-only",  # noqa: S106
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["lifespan_container"],
    MIDDLEWARE=[],
    DATABASES={},
    LIFESPAN_CONTAINER={"CONTAINER": None},
)
django.setup()

from dependency_injector import containers, providers
from django.core.asgi import get_asgi_application as vanilla_application

from lifespan_container import Provide, RequestResource, inject
from lifespan_container.engine.protocol import ASGIApp
from lifespan_container.handler import LifespanHandler
from lifespan_container.testing import lifespan, use_container


class Pool:
    """Stands for an app-scoped pool: opened at startup, handed to every request."""


class Conn:
    """Stands for a pooled connection: the cost measured is opening and closing its scope."""


class Counts:
    """How many request-scoped values were opened and closed (checked, not timed)."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0


DJANGO_COUNTS = Counts()
FASTAPI_COUNTS = Counts()


async def make_pool() -> AsyncIterator[Pool]:
    yield Pool()


async def checkout() -> AsyncIterator[Conn]:
    DJANGO_COUNTS.opened += 1
    yield Conn()
    DJANGO_COUNTS.closed += 1


class Container(containers.DeclarativeContainer):
    pool = providers.Resource(make_pool)
    conn = RequestResource(checkout)


@inject
async def without_scope(request: HttpRequest, pool: Pool = Provide[Container.pool]) -> HttpResponse:
    return HttpResponse(b"ok")


@inject
async def with_scope(
    request: HttpRequest,
    pool: Pool = Provide[Container.pool],
    # RequestResource(checkout) is typed with checkout's return type, the iterator.
    conn: object = Provide[Container.conn],
) -> HttpResponse:
    return HttpResponse(b"ok")


urlpatterns = [path("without", without_scope), path("with", with_scope)]


def fastapi_application() -> ASGIApp | None:
    """The FastAPI twin of the two views, or None when FastAPI is not installed.

    (Annotations are evaluated here, at definition: FastAPI reads them as objects.)
    """
    try:
        from typing import Annotated  # noqa: PLC0415

        from fastapi import Depends, FastAPI  # noqa: PLC0415
        from fastapi.responses import PlainTextResponse  # noqa: PLC0415
    except ImportError:
        return None

    pool = Pool()

    async def get_pool() -> Pool:
        return pool

    async def get_conn() -> AsyncIterator[Conn]:
        FASTAPI_COUNTS.opened += 1
        yield Conn()
        FASTAPI_COUNTS.closed += 1

    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.get("/without")
    async def without_dependency(pool: Annotated[Pool, Depends(get_pool)]) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @api.get("/with")
    async def with_dependency(
        pool: Annotated[Pool, Depends(get_pool)], conn: Annotated[Conn, Depends(get_conn)]
    ) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return api


SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench")],
    "client": ("127.0.0.1", 1234),
    "server": ("127.0.0.1", 80),
}


async def request(app: ASGIApp, url: str) -> None:
    disconnected = asyncio.get_running_loop().create_future()
    messages = iter([{"type": "http.request", "body": b"", "more_body": False}])
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        for message in messages:
            return message
        never: dict[str, Any] = await disconnected  # the client never disconnects
        return never

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = dict(SCOPE, path=url, raw_path=url.encode())
    await app(scope, receive, send)
    assert status == [200], (url, status)


SLICE = 10
"""Requests in a row per application: the applications of a group take turns in short
runs, so that a slow moment of this shared machine falls on all of them alike."""


async def one_round(
    cases: dict[str, tuple[ASGIApp, str]],
    requests: int,
    turn: int,
    samples: dict[str, list[int]] | None = None,
) -> dict[str, float]:
    """Serve ``requests`` requests per case, in turns of :data:`SLICE`: CPU s/request.

    The process CPU time of each run is returned per request; ``samples`` gets the
    event loop thread's CPU time of each request (ns).
    """
    names = list(cases)
    names = names[turn % len(names) :] + names[: turn % len(names)]
    spent = dict.fromkeys(names, 0.0)
    done = 0
    while done < requests:
        size = min(SLICE, requests - done)
        for name in names:
            app, url = cases[name]
            kept = samples.setdefault(name, []) if samples is not None else None
            started = time.process_time()
            for _ in range(size):
                began = time.thread_time_ns()
                await request(app, url)
                if kept is not None:
                    kept.append(time.thread_time_ns() - began)
            spent[name] += time.process_time() - started
        done += size
    return {name: spent[name] / requests for name in names}


def median_us(values: list[float]) -> float:
    return statistics.median(values) * 1e6


def quartiles(values: list[float], scale: float = 1.0) -> str:
    low, _, high = statistics.quantiles(values, n=4)
    return f"[quartiles {low * scale:.2f} .. {high * scale:.2f}]"


async def measure(ours: ASGIApp, rounds: int, requests: int) -> None:
    vanilla: ASGIApp = vanilla_application()
    groups: list[dict[str, tuple[ASGIApp, str]]] = [
        {
            "django without": (ours, "/without"),
            "django with": (ours, "/with"),
            "vanilla without": (vanilla, "/without"),
        }
    ]
    fastapi = fastapi_application()
    if fastapi is None:
        print("FastAPI is not installed: its figures are skipped (pip install fastapi).")
    else:
        groups.append(
            {"fastapi without": (fastapi, "/without"), "fastapi with": (fastapi, "/with")}
        )

    warmup = max(requests // 4, 1)
    for group in groups:  # warm up, and check what is measured
        await one_round(group, warmup, 0)
    for counts in (DJANGO_COUNTS, FASTAPI_COUNTS) if fastapi else (DJANGO_COUNTS,):
        assert counts.opened == counts.closed == warmup, vars(counts)

    times: dict[str, list[float]] = {name: [] for group in groups for name in group}
    samples: dict[str, list[int]] = {}
    for index in range(rounds):  # the groups, and the cases in a group, take turns
        for group in groups[index % len(groups) :] + groups[: index % len(groups)]:
            for name, seconds in (await one_round(group, requests, index, samples)).items():
                times[name].append(seconds)
    report(times, samples, rounds, requests)


def report(
    times: dict[str, list[float]], samples: dict[str, list[int]], rounds: int, requests: int
) -> None:
    """Print the figures, the added costs and the ratios against their targets.

    An added cost is the difference of the medians of the per-request CPU time of
    the event loop's thread, with and without: the request resource is opened and
    closed on that thread (no thread hop), and the median leaves out what Django's
    per-request worker threads and the garbage collector add at random. FastAPI
    serves on that one thread too.
    """
    fastapi = "fastapi with" in times

    def added(name: str) -> list[float]:
        with_, without = times[f"{name} with"], times[f"{name} without"]
        return [w - o for w, o in zip(with_, without, strict=True)]

    def loop_us(name: str) -> float:
        return statistics.median(samples[name]) / 1000

    def loop_added(name: str) -> float:
        return loop_us(f"{name} with") - loop_us(f"{name} without")

    ours_added = added("django")
    handler_ratios = [
        o / v for o, v in zip(times["django without"], times["vanilla without"], strict=True)
    ]
    django_request = median_us(times["django without"])
    print(
        f"request scope: {rounds} rounds x {requests} requests, process CPU time, "
        f"Django {django.get_version()}"
        + (f", FastAPI {sys.modules['fastapi'].__version__}" if fastapi else "")
    )
    print(f"  django, no request resource:     {django_request:8.1f} us/request")
    print(f"  django, one RequestResource:     {median_us(times['django with']):8.1f} us/request")
    if fastapi:
        print(
            f"  fastapi, no yield dependency:    {median_us(times['fastapi without']):8.1f} "
            "us/request"
        )
        print(
            f"  fastapi, one yield dependency:   {median_us(times['fastapi with']):8.1f} us/request"
        )
    print(
        f"  added by our RequestResource:    {loop_added('django'):8.1f} us/request "
        f"(event loop thread; process CPU: {median_us(ours_added):.1f}, "
        f"{quartiles(ours_added, 1e6)})"
    )
    if fastapi:
        fastapi_added = added("fastapi")
        print(
            f"  added by FastAPI's yield Depends:{loop_added('fastapi'):8.1f} us/request "
            f"(event loop thread; process CPU: {median_us(fastapi_added):.1f}, "
            f"{quartiles(fastapi_added, 1e6)})"
        )
        if loop_added("fastapi") > 0:
            versus = loop_added("django") / loop_added("fastapi")
            print(
                f"  ours added / FastAPI added:      {versus:8.3f}  target <= 0.5: "
                f"{'met' if versus <= 0.5 else 'NOT met'}"
            )
        else:
            print("  ours added / FastAPI added:      n/a (FastAPI's added cost measured <= 0)")
    # Issue 15 set the target against a Django request when ours cost what Django's
    # handler does; since the fast path (issue 17) ours costs far less, so both show.
    share = loop_added("django") / median_us(times["vanilla without"])
    print(
        f"  ours added / django request:     {share:8.3f}  target <= 0.02: "
        f"{'met' if share <= 0.02 else 'NOT met'} (a request under Django's ASGIHandler)"
    )
    print(
        f"  ours added / our request:        {loop_added('django') / django_request:8.3f}  "
        "(info: the same request under this handler, without the idle thread hops)"
    )
    handler_ratio = statistics.median(handler_ratios)
    print(
        f"  no request-scoped provider, ours / vanilla ASGIHandler: {handler_ratio:.3f} "
        f"{quartiles(handler_ratios)} (vanilla {median_us(times['vanilla without']):.1f} us)"
    )


async def main(rounds: int, requests: int) -> None:
    with use_container(Container) as runtime:
        handler = LifespanHandler(runtime)
        async with lifespan(handler):  # the real startup, then the real shutdown
            await measure(handler, rounds, requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=150)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
