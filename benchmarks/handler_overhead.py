"""Per-request cost of the lifespan handler against vanilla Django, side by side.

Both applications serve the same async view through the same ASGI calls in one
process; rounds alternate which goes first, and the ratio printed is the median
of the per-round ratios (ours / vanilla). Target: <= 1.02.

    python benchmarks/handler_overhead.py [--rounds 40] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _django

_django.setup()

from django.core.asgi import get_asgi_application as vanilla_application

from lifespan_container.asgi import get_asgi_application

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/hello",
    "raw_path": b"/hello",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench")],
    "client": ("127.0.0.1", 1234),
    "server": ("127.0.0.1", 80),
}


async def request(app: Any) -> None:
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

    await app(dict(SCOPE), receive, send)
    assert status == [200], status


async def timed(app: Any, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await request(app)
    return (time.perf_counter() - started) / requests


async def main(rounds: int, requests: int) -> float:
    ours, vanilla = get_asgi_application(), vanilla_application()
    await timed(ours, requests // 4)  # warm up both
    await timed(vanilla, requests // 4)
    ours_times: list[float] = []
    vanilla_times: list[float] = []
    for index in range(rounds):
        pair = [(ours, ours_times), (vanilla, vanilla_times)]
        for app, times in pair if index % 2 else reversed(pair):
            times.append(await timed(app, requests))
    ratios = [o / v for o, v in zip(ours_times, vanilla_times, strict=True)]
    ratio = statistics.median(ratios)
    print(f"handler overhead: {rounds} rounds x {requests} requests of an async view")
    print(f"  vanilla Django ASGIHandler: {statistics.median(vanilla_times) * 1e6:8.1f} us/request")
    print(f"  lifespan_container handler: {statistics.median(ours_times) * 1e6:8.1f} us/request")
    print(
        f"  ratio (median of per-round ratios): {ratio:.3f} "
        f"[quartiles {statistics.quantiles(ratios, n=4)[0]:.3f} .. "
        f"{statistics.quantiles(ratios, n=4)[2]:.3f}]  target <= 1.02: "
        f"{'met' if ratio <= 1.02 else 'NOT met'}"
    )
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
