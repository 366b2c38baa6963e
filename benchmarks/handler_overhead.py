"""Per-request CPU cost of the lifespan handler against vanilla Django, side by side.

One process, one in-process ASGI harness (the application called directly with a
scope, ``receive`` and ``send``), three comparisons of ours against vanilla
Django's ``ASGIHandler``, each pair built with its own middleware stack:

(a) an async view, no middleware. Target: ours / vanilla <= 0.2 (issue 17: an async
    view skips Django's per-request thread hops). FastAPI's figure for the same
    async endpoint is printed beside it when FastAPI is installed.
(b) the async view behind ``SecurityMiddleware`` and ``CommonMiddleware``.
    Target: <= 1.02.
(c) a sync view, no middleware (so the handler's own share is the largest).
    Target: <= 1.02.

Every figure is process CPU time (``time.process_time()``: every thread, so the
work Django hands to its worker threads counts) per request. In every round each
application serves the same number of requests, all of them taking turns in runs
of ten (the order rotates from round to round); a figure is the median over the
rounds and a ratio the median of the per-round ratios. The targets are reported,
never enforced.

    python benchmarks/handler_overhead.py [--rounds 30] [--requests 150]
"""

import argparse
import asyncio
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _django

_django.setup()

import django
from django.core.asgi import get_asgi_application as vanilla_application
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings

from lifespan_container.asgi import get_asgi_application
from lifespan_container.engine.protocol import ASGIApp
from lifespan_container.testing import lifespan

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

NO_MIDDLEWARE: tuple[str, ...] = ()
ASYNC_VIEW, SYNC_VIEW = "/hello", "/hello-sync"
SLICE = 10
"""Requests in a row per application: the applications take turns in short runs, so
that a slow moment of this shared machine falls on all of them alike."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # names in lower case
    body: bytes


async def request(app: ASGIApp, url: str) -> Response:
    disconnected = asyncio.get_running_loop().create_future()
    messages = iter([{"type": "http.request", "body": b"", "more_body": False}])
    start: list[dict[str, Any]] = []
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        for message in messages:
            return message
        never: dict[str, Any] = await disconnected  # the client never disconnects
        return never

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.append(message)
        else:
            body.append(message.get("body", b""))

    await app(dict(SCOPE, path=url, raw_path=url.encode()), receive, send)
    assert len(start) == 1, (url, start)
    headers = {name.lower(): value for name, value in start[0].get("headers", [])}
    return Response(start[0]["status"], headers, b"".join(body))


@dataclass(frozen=True)
class Case:
    app: ASGIApp
    url: str
    middleware: Sequence[str] | None  # None: not a Django handler (FastAPI)


@dataclass(frozen=True)
class Pair:
    label: str
    ours: str
    vanilla: str
    target: float


PAIRS = [
    Pair("(a) async view, no middleware", "ours (a)", "vanilla (a)", 0.2),
    Pair("(b) async view, SecurityMiddleware + CommonMiddleware", "ours (b)", "vanilla (b)", 1.02),
    Pair("(c) sync view, no middleware", "ours (c)", "vanilla (c)", 1.02),
]
FASTAPI = "fastapi (a)"


def build(factory: Callable[[], ASGIHandler], middleware: Sequence[str]) -> ASGIHandler:
    """A handler whose middleware chain is ``middleware`` (Django builds it in __init__)."""
    with override_settings(MIDDLEWARE=list(middleware)):
        return factory()


def chain_of(handler: ASGIHandler) -> list[str]:
    """The names along the handler's middleware chain, outermost first."""
    names: list[str] = []
    link: Any = vars(handler)["_middleware_chain"]  # set by load_middleware(); not typed
    while link is not None:
        inner = getattr(link, "__wrapped__", link)  # convert_exception_to_response's wrapper
        if hasattr(inner, "get_response"):  # a middleware instance
            names.append(type(inner).__name__)
            link = inner.get_response
        else:  # the handler's own _get_response_async
            names.append(inner.__name__)
            link = None
    return names


def fastapi_application() -> ASGIApp | None:
    """FastAPI serving the same async endpoint, or None when FastAPI is not installed."""
    try:
        from fastapi import FastAPI  # noqa: PLC0415
        from fastapi.responses import Response as FastAPIResponse  # noqa: PLC0415
    except ImportError:
        return None
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.get(ASYNC_VIEW)
    async def hello() -> FastAPIResponse:
        return FastAPIResponse(b"hello", media_type="text/html; charset=utf-8")

    return api


def applications() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for pair, url, middleware in zip(
        PAIRS,
        (ASYNC_VIEW, ASYNC_VIEW, SYNC_VIEW),
        (NO_MIDDLEWARE, _django.SECURITY_AND_COMMON, NO_MIDDLEWARE),
        strict=True,
    ):
        cases[pair.ours] = Case(build(get_asgi_application, middleware), url, middleware)
        cases[pair.vanilla] = Case(build(vanilla_application, middleware), url, middleware)
    fastapi = fastapi_application()
    if fastapi is None:
        print("FastAPI is not installed: its figure is skipped (pip install fastapi).")
    else:
        cases[FASTAPI] = Case(fastapi, ASYNC_VIEW, None)
    return cases


async def check(cases: dict[str, Case]) -> None:
    """Every application answers, with the middleware stack it is meant to have."""
    for name, case in cases.items():
        response = await request(case.app, case.url)
        assert (response.status, response.body) == (200, b"hello"), (name, response)
        if case.middleware is None:
            continue
        assert isinstance(case.app, ASGIHandler), name
        names = [path.rsplit(".", 1)[1] for path in case.middleware]
        assert chain_of(case.app) == [*names, "_get_response_async"], (name, chain_of(case.app))
        secured = response.headers.get(b"x-content-type-options") == b"nosniff"
        assert secured == ("SecurityMiddleware" in names), (name, response.headers)


async def one_round(cases: dict[str, Case], requests: int, turn: int) -> dict[str, float]:
    """Serve ``requests`` requests per application, in turns of SLICE: CPU s/request."""
    names = list(cases)
    names = names[turn % len(names) :] + names[: turn % len(names)]
    spent = dict.fromkeys(names, 0.0)
    done = 0
    while done < requests:
        size = min(SLICE, requests - done)
        for name in names:
            app, url = cases[name].app, cases[name].url
            started = time.process_time()
            for _ in range(size):
                await request(app, url)
            spent[name] += time.process_time() - started
        done += size
    return {name: spent[name] / requests for name in names}


def quartiles(values: list[float]) -> str:
    low, _, high = statistics.quantiles(values, n=4)
    return f"[quartiles {low:.3f} .. {high:.3f}]"


def report(times: dict[str, list[float]], rounds: int, requests: int) -> None:
    def us(name: str) -> str:
        return f"{statistics.median(times[name]) * 1e6:8.1f} us/request"

    def ratios(top: str, bottom: str) -> list[float]:
        return [t / b for t, b in zip(times[top], times[bottom], strict=True)]

    fastapi = sys.modules.get("fastapi")
    print(
        f"handler overhead: {rounds} rounds x {requests} requests per application, process "
        f"CPU time per request (median over rounds); Python {platform.python_version()}, "
        f"Django {django.get_version()}"
        + (f", FastAPI {fastapi.__version__}" if FASTAPI in times and fastapi else "")
    )
    for pair in PAIRS:
        print(f"  {pair.label}")
        print(f"    vanilla Django ASGIHandler:   {us(pair.vanilla)}")
        print(f"    lifespan_container handler:   {us(pair.ours)}")
        if pair.ours == "ours (a)" and FASTAPI in times:
            print(f"    FastAPI, same async endpoint: {us(FASTAPI)}")
        per_round = ratios(pair.ours, pair.vanilla)
        ratio = statistics.median(per_round)
        verdict = "met" if ratio <= pair.target else "above target"
        print(
            f"    ours / vanilla: {ratio:.3f} {quartiles(per_round)}  "
            f"target <= {pair.target}: {verdict}"
        )
        if pair.ours == "ours (a)" and FASTAPI in times:
            versus = ratios(pair.ours, FASTAPI)
            print(
                f"    ours / FastAPI: {statistics.median(versus):.3f} {quartiles(versus)}  (info)"
            )


async def main(rounds: int, requests: int) -> None:
    cases = applications()
    async with AsyncExitStack() as stack:
        for name, case in cases.items():  # the real lifespan startup, as a server runs it
            if name.startswith("ours"):
                await stack.enter_async_context(lifespan(case.app))
        await check(cases)
        await one_round(cases, max(requests // 4, 1), 0)  # warm up
        times: dict[str, list[float]] = {name: [] for name in cases}
        for index in range(rounds):
            for name, seconds in (await one_round(cases, requests, index)).items():
                times[name].append(seconds)
    report(times, rounds, requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=150)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
