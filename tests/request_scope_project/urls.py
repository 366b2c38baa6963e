"""``/stream``: rows read on the request's connection while they are streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import path
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from lifespan_container import Provide, get_container, inject
from tests.project.events import record
from tests.request_scope_project.containers import Container, available

CHUNK_ROWS = 3


@inject
async def stream(
    request: HttpRequest,
    conn: AsyncConnection[Any] = Provide[Container.conn],
    pool: AsyncConnectionPool = Provide[Container.pool],
) -> StreamingHttpResponse:
    """``?rows=`` numbers, ``CHUNK_ROWS`` a chunk, fetched one chunk at a time.

    With ``?gate=<key>``, after the first chunk the stream waits for the PostgreSQL
    advisory lock ``key``, which the test holds until it lets the stream go on.
    """
    marker = request.GET.get("n", "-")
    rows = int(request.GET.get("rows", "10"))
    gate = request.GET.get("gate")

    async def chunks() -> AsyncIterator[bytes]:
        waiting = gate
        try:
            async with conn.cursor(name="rows") as cursor:
                await cursor.execute("SELECT n FROM generate_series(1, %s) AS n", (rows,))
                while batch := await cursor.fetchmany(CHUNK_ROWS):
                    record(f"chunk {marker} {available(pool)}")
                    yield "".join(f"{n}," for (n,) in batch).encode()
                    if waiting is not None:
                        record(f"gate {marker}")
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (int(waiting),))
                        waiting = None
            record(f"stream-end {marker}")
        except BaseException as error:
            record(f"stream-saw {marker} {type(error).__name__}")
            raise

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def pool_stats(request: HttpRequest) -> JsonResponse:
    """The worker's ``pool.get_stats()``."""
    return JsonResponse(get_container().pool().get_stats())


urlpatterns = [path("stream", stream), path("pool", pool_stats)]
