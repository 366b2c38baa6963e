"""Request-scoped connections from a real PostgreSQL pool: container, views, URLconf.

``conn`` checks a connection out of the app-scoped ``pool`` for one request and
holds a transaction on it (the shape the issue names); ``sync_conn`` does the same
with a sync ``psycopg_pool.ConnectionPool``. Both record in the test's
:class:`PgRecord` what happened: which backend each request held, when it was
checked out and given back, what was thrown into the generator, in which thread.
The views are made per test (:func:`make_views`), with the ``registry`` fixture.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from dependency_injector import containers, providers
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import path
from psycopg import AsyncConnection, Connection, sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from lifespan_container import CurrentRequest, Provide, RequestResource, get_container, inject

POOL_SIZE = 2
"""The async pool's size unless a test asks for another."""


class PgRecord:
    """What the request-scoped connections did, in order, for one test."""

    def __init__(self, table: str, saturate_at: int = 0) -> None:
        self.table = table
        self.events: list[tuple[str, str, int]] = []
        """``(what, request marker, backend pid)``: ``out`` (checked out), ``view``, ``in``."""
        self.seen: dict[str, BaseException | None] = {}
        """Request marker -> what the checkout generator saw thrown in (None: a normal exit)."""
        self.returned_status: dict[str, str] = {}
        """Request marker -> the connection's transaction status as it went back."""
        self.threads: dict[str, dict[str, int]] = {}
        """Request marker -> ``{"open": ..., "view": ..., "close": ...}`` thread idents."""
        self.stream_stats: list[dict[str, int]] = []
        """``pool.get_stats()`` each time the stream produced a chunk."""
        self.stream_end_stats: dict[str, int] | None = None
        """``pool.get_stats()`` once the stream ran past its last chunk."""
        self.stream_saw: list[BaseException] = []
        """What ended the stream's generator other than its normal end."""
        self.in_flight = 0
        self.max_in_flight = 0
        self.saturate_at = saturate_at
        self.saturated = asyncio.Event()
        """Set once ``saturate_at`` connections are checked out at the same time."""
        self.sleeping = asyncio.Event()
        """Set when the stream of a ``?wait=1`` request starts its long query."""
        self.view_waiting = asyncio.Event()
        """Set when the ``held`` view holds its connection and waits for ``release``."""
        self.release = asyncio.Event()
        """Set by a test to let the ``held`` view go on."""
        self.view_done = asyncio.Event()
        """Set when the ``held`` view ended, whichever way."""
        self.view_saw: BaseException | None = None
        """What ended the ``held`` view other than its return."""

    def checked_out(self, marker: str, pid: int) -> None:
        self.events.append(("out", marker, pid))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.saturate_at and self.in_flight >= self.saturate_at:
            self.saturated.set()

    def checked_in(self, marker: str, pid: int, status: str) -> None:
        self.events.append(("in", marker, pid))
        self.returned_status[marker] = status
        self.in_flight -= 1


def marker_of(request: HttpRequest) -> str:
    return request.GET.get("n", request.path)


async def open_pool(dsn: str, size: int, name: str) -> AsyncIterator[AsyncConnectionPool]:
    """The app-scoped pool: ``size`` connections, all open before serving."""
    pool = AsyncConnectionPool(
        dsn,
        min_size=size,
        max_size=size,
        open=False,
        timeout=30,
        kwargs={"application_name": name, "connect_timeout": 5},
    )
    async with pool:
        await pool.wait(timeout=10)
        yield pool


async def checkout(
    pool: AsyncConnectionPool, record: PgRecord, request: HttpRequest
) -> AsyncIterator[AsyncConnection[Any]]:
    """One connection and one transaction for the request; records what it saw."""
    marker = marker_of(request)
    async with pool.connection() as conn:
        pid = conn.info.backend_pid
        record.checked_out(marker, pid)
        try:
            async with conn.transaction():
                yield conn
        except BaseException as error:
            record.seen[marker] = error
            raise
        else:
            record.seen[marker] = None
        finally:
            record.checked_in(marker, pid, conn.info.transaction_status.name)


def open_sync_pool(dsn: str, name: str) -> Iterator[ConnectionPool]:
    """A sync pool (app-scoped) for the sync request resource."""
    pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=2,
        open=False,
        timeout=30,
        kwargs={"application_name": name, "connect_timeout": 5},
    )
    with pool:
        pool.wait(timeout=10)
        yield pool


def sync_checkout(
    pool: ConnectionPool, record: PgRecord, request: HttpRequest
) -> Iterator[Connection[Any]]:
    """The sync twin of :func:`checkout`; records the threads it opens and closes in."""
    marker = marker_of(request)
    threads = record.threads.setdefault(marker, {})
    threads["open"] = threading.get_ident()
    with pool.connection() as conn:
        pid = conn.info.backend_pid
        record.checked_out(marker, pid)
        try:
            with conn.transaction():
                yield conn
        except BaseException as error:
            record.seen[marker] = error
            raise
        else:
            record.seen[marker] = None
        finally:
            threads["close"] = threading.get_ident()
            record.checked_in(marker, pid, conn.info.transaction_status.name)


class PgContainer(containers.DeclarativeContainer):
    record = providers.Dependency(instance_of=PgRecord)
    dsn = providers.Dependency(instance_of=str)
    size = providers.Dependency(instance_of=int)
    name = providers.Dependency(instance_of=str)
    request = CurrentRequest()
    pool = providers.Resource(open_pool, dsn, size, name)
    sync_pool = providers.Resource(open_sync_pool, dsn, name)
    # Typed with what the generators yield, as providers.Resource is.
    conn = RequestResource(checkout, pool=pool, record=record, request=request)
    sync_conn = RequestResource(sync_checkout, pool=sync_pool, record=record, request=request)


def make_container(record: PgRecord, dsn: str, name: str, size: int = POOL_SIZE) -> PgContainer:
    return PgContainer(
        record=providers.Object(record),
        dsn=providers.Object(dsn),
        size=providers.Object(size),
        name=providers.Object(name),
    )


urlpatterns: list[Any] = []

CHUNK_ROWS = 3


def make_views(record: PgRecord) -> None:
    """Route the views (call it where the ``registry`` fixture restores the registry)."""
    table = sql.Identifier(record.table)

    @inject
    async def stream(
        request: HttpRequest,
        conn: AsyncConnection[Any] = Provide[PgContainer.conn],
        pool: AsyncConnectionPool = Provide[PgContainer.pool],
    ) -> StreamingHttpResponse:
        """The table's rows, read with a server-side cursor one chunk at a time.

        With ``?wait=1``, after the first chunk the stream runs a query that only
        a cancellation ends (the client going away).
        """
        wait = request.GET.get("wait") == "1"

        async def rows() -> AsyncIterator[bytes]:
            try:
                async with conn.cursor(name="rows") as cursor:
                    await cursor.execute(sql.SQL("SELECT n FROM {} ORDER BY n").format(table))
                    while batch := await cursor.fetchmany(CHUNK_ROWS):
                        record.stream_stats.append(pool.get_stats())
                        yield "".join(f"{n}," for (n,) in batch).encode()
                        if wait:
                            record.sleeping.set()
                            await conn.execute("SELECT pg_sleep(60)")
                record.stream_end_stats = pool.get_stats()
            except BaseException as error:
                record.stream_saw.append(error)
                raise

        return StreamingHttpResponse(rows(), content_type="text/plain")

    @inject
    async def insert(
        request: HttpRequest, conn: AsyncConnection[Any] = Provide[PgContainer.conn]
    ) -> JsonResponse:
        """Insert ``n``; with ``?fail=1``, raise after the insert."""
        marker = marker_of(request)
        await conn.execute(
            sql.SQL("INSERT INTO {} (n, note) VALUES (%s, %s)").format(table),
            (int(marker), "async"),
        )
        if request.GET.get("fail") == "1":
            msg = f"the view failed after inserting {marker}"
            raise ValueError(msg)
        return JsonResponse({"inserted": int(marker)})

    @inject
    async def stream_fails(
        request: HttpRequest, conn: AsyncConnection[Any] = Provide[PgContainer.conn]
    ) -> StreamingHttpResponse:
        """A stream that inserts ``n``, sends a chunk, then raises."""
        marker = marker_of(request)

        async def chunks() -> AsyncIterator[bytes]:
            await conn.execute(
                sql.SQL("INSERT INTO {} (n, note) VALUES (%s, %s)").format(table),
                (int(marker), "stream"),
            )
            yield b"inserted;"
            msg = f"the stream failed after inserting {marker}"
            raise ValueError(msg)

        return StreamingHttpResponse(chunks(), content_type="text/plain")

    @inject
    async def hold(
        request: HttpRequest, conn: AsyncConnection[Any] = Provide[PgContainer.conn]
    ) -> JsonResponse:
        """Ask the connection whose it is; hold it until the pool is saturated once; ask the
        container for the request's connection again."""
        marker = marker_of(request)
        cursor = await conn.execute("SELECT pg_backend_pid(), %s::text", (marker,))
        row = await cursor.fetchone()
        assert row is not None
        pid, echoed = row
        record.events.append(("view", marker, pid))
        await record.saturated.wait()
        # Asked again after other requests opened theirs: still this request's own.
        again = get_container().conn()
        return JsonResponse({"pid": pid, "n": echoed, "same": again is conn})

    @inject
    async def held(
        request: HttpRequest, conn: AsyncConnection[Any] = Provide[PgContainer.conn]
    ) -> JsonResponse:
        """Hold the connection until ``record.release``, then use it."""
        marker = marker_of(request)
        try:
            record.view_waiting.set()
            await record.release.wait()
            await conn.execute("SELECT 1")
            record.events.append(("view", marker, conn.info.backend_pid))
            return JsonResponse({})
        except BaseException as error:
            record.view_saw = error
            raise
        finally:
            record.view_done.set()

    @inject
    def sync_insert(
        request: HttpRequest, conn: Connection[Any] = Provide[PgContainer.sync_conn]
    ) -> JsonResponse:
        """The sync view: insert ``n`` on the sync connection; ``?fail=1`` raises after."""
        marker = marker_of(request)
        record.threads.setdefault(marker, {})["view"] = threading.get_ident()
        conn.execute(
            sql.SQL("INSERT INTO {} (n, note) VALUES (%s, %s)").format(table),
            (int(marker), "sync"),
        )
        if request.GET.get("fail") == "1":
            msg = f"the sync view failed after inserting {marker}"
            raise ValueError(msg)
        return JsonResponse({"inserted": int(marker), "thread": threading.get_ident()})

    views: list[Callable[..., Any]] = [stream, insert, stream_fails, hold, held, sync_insert]
    urlpatterns[:] = [path(f"{view.__name__}/", view) for view in views]
