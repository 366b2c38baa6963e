"""Request-scoped connections against the real PostgreSQL pool, in process.

The container (tests/request_scope_pg_app.py) opens an ``AsyncConnectionPool`` for
the lifespan and, per request, ``RequestResource(checkout, pool=pool)``::

    async def checkout(pool):
        async with pool.connection() as conn:
            async with conn.transaction():
                yield conn

What the tests look at is real: ``pool.get_stats()``, rows read back on a fresh
connection, ``pg_stat_activity``. Requests go through ``lifespan_client`` or, where
the test must control the client's side (a disconnect, what each ``send`` sees), a
raw ASGI exchange that calls the handler directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import uuid
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any

import psycopg
import pytest
from django.core.exceptions import RequestAborted
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan, lifespan_client, use_container
from tests.conftest import Registry
from tests.lifespan_driver import http_scope
from tests.request_scope_pg_app import (
    CHUNK_ROWS,
    POOL_SIZE,
    PgContainer,
    PgRecord,
    make_container,
    make_views,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.services]

SAFETY = 10.0
"""Seconds before a hung exchange fails the test: a safety net, never a timing."""

ROWS = 10
CONCURRENT = 100
BIG_POOL = 4


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect what a test left behind before the next test runs.

    A library that never closes a request resource leaves suspended generators
    that hold pool connections; finalized at a random later point (inside pytest
    formatting another test's failure), they crash CPython 3.11's ``ast.parse``
    ("AST constructor recursion depth mismatch") instead of failing the test.
    """
    yield
    gc.collect()


@pytest.fixture
def table(postgres_dsn: str, app_name: str) -> Iterator[str]:
    """A table of its own for the test, dropped after it.

    Backends a broken test left behind (tagged with the test's ``app_name``, maybe
    idle in a transaction that locks the table) are ended first, so that the drop
    cannot wait for them.
    """
    name = f"lc_rs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (n int NOT NULL, note text)").format(ident(name)))
    try:
        yield name
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (app_name,),
            )
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name)))


def ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


@pytest.fixture
def app_name() -> str:
    """The pools' ``application_name``, to find their backends in ``pg_stat_activity``."""
    return f"lc-rs-{uuid.uuid4().hex[:8]}"


def fill(dsn: str, table: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("INSERT INTO {} (n, note) VALUES (%s, 'seed')").format(ident(table)),
            [(n,) for n in range(1, rows + 1)],
        )


async def notes(dsn: str, table: str) -> dict[int, str]:
    """The table's rows, read on a fresh connection (what is committed)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT n, note FROM {} ORDER BY n").format(ident(table))
        )
        return dict(await cursor.fetchall())


async def activity(dsn: str, name: str) -> list[tuple[str, str]]:
    """``(state, query)`` of each backend tagged ``name``."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = %s", (name,)
        )
        return [(str(state), str(query)) for state, query in await cursor.fetchall()]


def returned(pool: AsyncConnectionPool | ConnectionPool, size: int) -> dict[str, int]:
    """The pool's stats, asserting that every connection is back and none waits."""
    stats = pool.get_stats()
    assert stats["pool_size"] == size, stats
    assert stats["pool_available"] == size, stats
    assert stats["requests_waiting"] == 0, stats
    assert stats.get("returns_bad", 0) == 0, stats
    return stats


class Served:
    """The runtime of one test, its record and the pools it opened."""

    def __init__(self, runtime: Runtime, record: PgRecord) -> None:
        self.runtime = runtime
        self.record = record
        container: Any = runtime.container
        self.container: PgContainer = container

    @property
    def pool(self) -> AsyncConnectionPool:
        pool: AsyncConnectionPool = self.container.pool()
        return pool

    @property
    def sync_pool(self) -> ConnectionPool:
        pool: ConnectionPool = self.container.sync_pool()
        return pool


@contextlib.contextmanager
def serve(
    record: PgRecord, dsn: str, name: str, settings: Any, size: int = POOL_SIZE
) -> Iterator[Served]:
    settings.ROOT_URLCONF = "tests.request_scope_pg_app"
    make_views(record)
    with use_container(make_container(record, dsn, name, size)) as runtime:
        yield Served(runtime, record)


@pytest.fixture
def served(
    table: str, app_name: str, postgres_dsn: str, registry: Registry, settings: Any
) -> Iterator[Served]:
    with serve(PgRecord(table), postgres_dsn, app_name, settings) as running:
        yield running


Message = MutableMapping[str, Any]


class Exchange:
    """One HTTP exchange with the handler, driven from the server's side.

    ``receive`` gives the (empty) request body, then waits: for ``disconnect`` (an
    ``asyncio.Event``) when the test sets it, otherwise until the handler is done.
    ``send`` keeps each message with the pool's stats at the moment it was sent.
    """

    def __init__(self, pool: AsyncConnectionPool, path: str, query: str = "") -> None:
        self.pool = pool
        self.scope = http_scope(path, query)
        self.sent: list[tuple[Message, dict[str, int]]] = []
        self.first_chunk = asyncio.Event()
        self.disconnect = asyncio.Event()
        self.disconnect_after_first_chunk = False
        self._body_given = False

    async def receive(self) -> dict[str, Any]:
        if not self._body_given:
            self._body_given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append((dict(message), self.pool.get_stats()))
        if message["type"] == "http.response.body" and message.get("body"):
            self.first_chunk.set()
            if self.disconnect_after_first_chunk:
                self.disconnect.set()

    async def run(self, handler: LifespanHandler, state: dict[str, Any]) -> None:
        self.scope["state"] = dict(state)
        async with asyncio.timeout(SAFETY):
            await handler(self.scope, self.receive, self.send)

    def body_messages(self) -> list[tuple[Message, dict[str, int]]]:
        return [(m, s) for m, s in self.sent if m["type"] == "http.response.body"]

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m, _ in self.body_messages())


def expected_rows(rows: int) -> str:
    return "".join(f"{n}," for n in range(1, rows + 1))


async def test_streaming_reads_rows_on_the_request_connection_until_the_last_chunk(
    served: Served, postgres_dsn: str, table: str
) -> None:
    """The stream reads its rows chunk by chunk (a server-side cursor) on the request's
    connection: it is checked out while each chunk is made and still after the last
    one; it is back in the pool, after a normal exit, once the response is done."""
    fill(postgres_dsn, table, ROWS)
    record = served.record
    async with lifespan_client(LifespanHandler(served.runtime)) as client:
        pool = served.pool
        returned(pool, POOL_SIZE)
        response = await client.get("/stream/", params={"n": "s1"})
        assert response.status_code == 200
        assert response.text == expected_rows(ROWS)
        assert len(record.stream_stats) == -(-ROWS // CHUNK_ROWS)  # one stats per chunk
        for stats in record.stream_stats:
            assert stats["pool_available"] == POOL_SIZE - 1, record.stream_stats
        assert record.stream_end_stats is not None
        assert record.stream_end_stats["pool_available"] == POOL_SIZE - 1  # past the last
        assert record.stream_saw == []
        stats = returned(pool, POOL_SIZE)
        assert stats["requests_num"] == 1
    [(_, _, pid_out), (_, _, pid_in)] = record.events
    assert [event[:2] for event in record.events] == [("out", "s1"), ("in", "s1")]
    assert pid_out == pid_in
    assert record.seen == {"s1": None}  # exited normally: the transaction committed
    assert record.returned_status == {"s1": "IDLE"}


async def test_each_message_is_sent_with_the_connection_out_and_it_returns_after_the_last(
    served: Served, postgres_dsn: str, table: str
) -> None:
    """At the ASGI boundary: every ``send`` (the start, each chunk, the final empty
    body) happens while the connection is checked out; the pool has it back once the
    handler returned."""
    fill(postgres_dsn, table, ROWS)
    handler = LifespanHandler(served.runtime)
    async with lifespan(handler) as state:
        pool = served.pool
        exchange = Exchange(pool, "/stream/", "n=s2")
        await exchange.run(handler, state)
        assert exchange.sent[0][0]["type"] == "http.response.start"
        assert exchange.sent[0][0]["status"] == 200
        assert exchange.body() == expected_rows(ROWS).encode()
        last, _ = exchange.sent[-1]
        assert last["type"] == "http.response.body"
        assert not last.get("more_body")
        for message, stats in exchange.sent:
            assert stats["pool_available"] == POOL_SIZE - 1, (message, stats)
        returned(pool, POOL_SIZE)
    assert served.record.seen == {"s2": None}


async def test_a_disconnect_mid_stream_cancels_the_query_and_returns_the_connection(
    served: Served, postgres_dsn: str, table: str, app_name: str
) -> None:
    """The client goes away after the first chunk, while the stream waits on a query:
    the stream is cancelled, ``RequestAborted`` is thrown into ``checkout`` (the
    transaction rolls back), the connection returns to the pool, usable, and no
    backend still runs the query."""
    fill(postgres_dsn, table, ROWS)
    record = served.record
    handler = LifespanHandler(served.runtime)
    async with lifespan(handler) as state:
        pool = served.pool
        exchange = Exchange(pool, "/stream/", "n=d1&wait=1")
        exchange.disconnect_after_first_chunk = True
        await exchange.run(handler, state)
        assert exchange.first_chunk.is_set()
        assert record.sleeping.is_set()  # the cancellation found the stream in its query
        assert exchange.body() == expected_rows(CHUNK_ROWS).encode()
        assert all(m.get("more_body") for m, _ in exchange.body_messages())  # never finished
        [stream_saw] = record.stream_saw
        assert isinstance(stream_saw, asyncio.CancelledError), repr(stream_saw)
        assert isinstance(record.seen["d1"], RequestAborted), repr(record.seen["d1"])
        assert record.returned_status == {"d1": "IDLE"}  # rolled back before going back
        returned(pool, POOL_SIZE)
        async with pool.connection() as conn:  # what went back is a usable connection
            cursor = await conn.execute("SELECT 1")
            assert await cursor.fetchone() == (1,)
        states = await activity(postgres_dsn, app_name)
    assert len(states) == POOL_SIZE + 1  # the async pool's and the sync pool's one
    assert not [query for state, query in states if state != "idle"], states
    assert [event[:2] for event in record.events] == [("out", "d1"), ("in", "d1")]


async def test_a_view_that_raises_after_an_insert_rolls_it_back(
    served: Served, postgres_dsn: str, table: str
) -> None:
    """500, the view's exception thrown into ``checkout``: the row is not in the
    table. The same view without the failure commits its row."""
    record = served.record
    async with lifespan_client(LifespanHandler(served.runtime)) as client:
        failed = await client.get("/insert/", params={"n": "1", "fail": "1"})
        assert failed.status_code == 500
        committed = await client.get("/insert/", params={"n": "2"})
        assert committed.status_code == 200
        assert committed.json() == {"inserted": 2}
        returned(served.pool, POOL_SIZE)
    error = record.seen["1"]
    assert isinstance(error, ValueError), repr(error)
    assert str(error) == "the view failed after inserting 1"
    assert record.seen["2"] is None
    assert record.returned_status == {"1": "IDLE", "2": "IDLE"}
    assert await notes(postgres_dsn, table) == {2: "async"}


async def test_a_stream_that_raises_after_an_insert_rolls_it_back(
    served: Served, postgres_dsn: str, table: str
) -> None:
    """The stream's iterator inserts, sends a chunk, then raises: the response never
    completes, the iterator's exception is thrown into ``checkout``, the row is not
    in the table and the connection is back in the pool."""
    record = served.record
    handler = LifespanHandler(served.runtime)
    async with lifespan(handler) as state:
        exchange = Exchange(served.pool, "/stream_fails/", "n=3")
        with pytest.raises(ValueError, match="the stream failed after inserting 3"):
            await exchange.run(handler, state)  # Django lets it out to the server
        assert exchange.body() == b"inserted;"
        assert all(m.get("more_body") for m, _ in exchange.body_messages())
        returned(served.pool, POOL_SIZE)
    error = record.seen.pop("3")
    assert isinstance(error, ValueError), repr(error)
    assert str(error) == "the stream failed after inserting 3"
    assert record.returned_status == {"3": "IDLE"}
    assert await notes(postgres_dsn, table) == {}
    del error
    # Django's ASGIHandler.handle lets an exception of the response's iterator out
    # before it closes the request's body file (a SpooledTemporaryFile): collected
    # here, its ResourceWarning is this test's, not one of a later test.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    unexpected = [w for w in caught if "SpooledTemporaryFile" not in str(w.message)]
    assert not unexpected, [str(w.message) for w in unexpected]


async def test_a_request_the_server_cancels_ends_its_view_before_the_connection_goes_back(
    served: Served,
) -> None:
    """The server cancels the request's task while the view holds its connection: the
    view is cancelled and has ended by the time the handler returned, and only then
    is the connection given back (``RequestAborted`` thrown into ``checkout``)."""
    record = served.record
    handler = LifespanHandler(served.runtime)
    async with lifespan(handler) as state:
        exchange = Exchange(served.pool, "/held/", "n=c1")
        request = asyncio.ensure_future(exchange.run(handler, state))
        try:
            async with asyncio.timeout(SAFETY):
                await record.view_waiting.wait()
            request.cancel()  # what a server does to a request it gives up on
            with pytest.raises(asyncio.CancelledError):
                await request
            view_ended_with_the_request = record.view_done.is_set()
            available_after = served.pool.get_stats()["pool_available"]
        finally:
            # Let a view left running (were it still) end, and Django's disconnect listener.
            record.release.set()
            exchange.disconnect.set()
            async with asyncio.timeout(SAFETY):
                await record.view_done.wait()
        stats_at_end = served.pool.get_stats()
    seen = repr(record.seen.pop("c1"))
    view_saw = repr(record.view_saw)
    record.view_saw = None
    del request
    # Django 5.2 never closes the body file of a request cancelled from outside:
    # collected here (once nothing holds a traceback of its handler), its
    # ResourceWarning is this test's, not one of a later test.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    unexpected = [w for w in caught if "SpooledTemporaryFile" not in str(w.message)]
    assert not unexpected, [str(w.message) for w in unexpected]
    assert seen.startswith("RequestAborted("), seen
    assert available_after == POOL_SIZE
    assert view_ended_with_the_request, "the connection went back while the view ran"
    assert view_saw == "CancelledError()", view_saw
    assert [event[:2] for event in record.events] == [("out", "c1"), ("in", "c1")]
    assert stats_at_end["pool_available"] == POOL_SIZE


async def test_a_hundred_concurrent_requests_share_a_pool_of_four_without_sharing_a_connection(
    table: str, app_name: str, postgres_dsn: str, registry: Registry, settings: Any
) -> None:
    """No deadlock; the pool is saturated (4 requests hold a connection at once, the
    rest queue); every request holds its own connection from checkout to return,
    never one another in-flight request holds; all are back at the end."""
    record = PgRecord(table, saturate_at=BIG_POOL)
    with serve(record, postgres_dsn, app_name, settings, size=BIG_POOL) as served:
        async with lifespan_client(LifespanHandler(served.runtime)) as client:
            requests = [
                asyncio.ensure_future(client.get("/hold/", params={"n": str(n)}))
                for n in range(CONCURRENT)
            ]
            # The bound is a safety net against a deadlock only: it fails the test.
            _, pending = await asyncio.wait(requests, timeout=SAFETY)
            for request in pending:
                request.cancel()
            await asyncio.wait(requests)
            stuck = len(pending)
            assert stuck == 0, f"{stuck} requests never ended: a deadlock"
            responses = [request.result() for request in requests]
            stats = returned(served.pool, BIG_POOL)
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    assert all(r.json()["same"] for r in responses)
    answers = {r.json()["n"]: r.json()["pid"] for r in responses}
    assert set(answers) == {str(n) for n in range(CONCURRENT)}
    assert stats["requests_num"] == CONCURRENT
    assert stats.get("requests_queued", 0) > 0  # the pool was the bottleneck
    assert record.max_in_flight == BIG_POOL
    assert record.in_flight == 0
    assert len(set(answers.values())) == BIG_POOL
    # Per request: checked out, used by the view, given back, one backend throughout.
    for marker, pid in answers.items():
        mine = [(what, p) for what, m, p in record.events if m == marker]
        assert mine == [("out", pid), ("view", pid), ("in", pid)], (marker, mine)
    # Per backend: out/in alternate, so no two in-flight requests ever held it.
    holders: dict[int, str] = {}
    for what, marker, pid in record.events:
        if what == "out":
            assert pid not in holders, (pid, holders[pid], marker)
            holders[pid] = marker
        elif what == "view":
            assert holders.get(pid) == marker, (pid, holders.get(pid), marker)
        else:
            assert holders.pop(pid) == marker
    assert holders == {}
    assert set(record.seen.values()) == {None}


async def test_a_sync_view_opens_and_closes_its_sync_connection_in_its_own_thread(
    served: Served, postgres_dsn: str, table: str
) -> None:
    """A sync view served over ASGI with a sync request resource (a connection of a
    sync pool): opened, used and closed in the view's thread, never the loop's; the
    failure of one request rolls its row back, the other commits."""
    record = served.record
    loop_thread = threading.get_ident()
    async with lifespan_client(LifespanHandler(served.runtime)) as client:
        committed = await client.get("/sync_insert/", params={"n": "7"})
        failed = await client.get("/sync_insert/", params={"n": "8", "fail": "1"})
        returned(served.sync_pool, 1)
    assert committed.status_code == 200
    assert failed.status_code == 500
    for marker in ("7", "8"):
        threads = record.threads[marker]
        assert set(threads) == {"open", "view", "close"}, threads
        assert threads["open"] == threads["view"] == threads["close"], threads
        assert threads["view"] != loop_thread
    assert committed.json()["thread"] == record.threads["7"]["view"]
    assert record.seen["7"] is None
    assert isinstance(record.seen["8"], ValueError), repr(record.seen["8"])
    assert record.returned_status == {"7": "IDLE", "8": "IDLE"}
    assert await notes(postgres_dsn, table) == {7: "sync"}
