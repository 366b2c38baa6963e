"""A bounded HTTP load generator, run as its own process by the load tests.

    python tests/loadgen.py URL REQUESTS CONCURRENCY [PROGRESS_FILE]

Sends REQUESTS GETs to URL with CONCURRENCY in flight, each bounded by a timeout,
and prints a JSON summary: status counts, transport errors by type, the largest
`pool_size` the server reported, and the 5xx bodies (at most ten). Every so often
it writes the number of completed requests to PROGRESS_FILE.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
from pathlib import Path
from typing import Any

import httpx

TIMEOUT = 30.0


async def main(url: str, total: int, concurrency: int, progress: Path | None) -> dict[str, Any]:
    statuses: collections.Counter[int] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    server_errors: list[str] = []
    largest_pool = 0
    done = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(total):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:

        async def worker() -> None:
            nonlocal largest_pool, done
            while not queue.empty():
                queue.get_nowait()
                try:
                    response = await client.get(url)
                except httpx.TransportError as exc:
                    errors[type(exc).__name__] += 1
                else:
                    statuses[response.status_code] += 1
                    if response.status_code >= 500 and len(server_errors) < 10:
                        server_errors.append(response.text[:300])
                    elif response.status_code == 200:
                        largest_pool = max(largest_pool, response.json()["pool_size"])
                done += 1
                if progress is not None and done % 200 == 0:
                    progress.write_text(str(done))  # noqa: ASYNC240 (a few bytes, rarely)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(errors),
        "largest_pool_size": largest_pool,
        "server_errors": server_errors,
    }


if __name__ == "__main__":
    target, count, parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    progress_file = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    print(json.dumps(asyncio.run(main(target, count, parallel, progress_file))))  # noqa: T201
