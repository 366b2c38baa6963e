"""The request-scoped ``conn``: one connection, one transaction per request, closed after it.

Each test runs on SQLite and, marked ``services``, on the local PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from lifespan_container.runtime import get_container
from weather import database
from weather.database import Database

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
CONNECTIONS: dict[str, type[database.SQLiteConnection | database.PostgresConnection]] = {
    "sqlite": database.SQLiteConnection,
    "postgresql": database.PostgresConnection,
}


@pytest.fixture(params=BACKENDS, autouse=True)
def backend(request: pytest.FixtureRequest) -> str:
    """The database every test runs on (set before any lifespan starts: autouse)."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres")
    return str(request.param)


@pytest.fixture
def visitor() -> str:
    """A visitor of this test only (the PostgreSQL database outlives the test)."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def db(backend: str, asgi_client: httpx.AsyncClient, visitor: str) -> AsyncIterator[Database]:
    """The app-scoped database the lifespan opened; the test's visits deleted after it.

    Only PostgreSQL's: every test gets a SQLite file of its own (conftest).
    """
    opened: Database = get_container().db()
    assert opened.backend == backend
    yield opened
    if backend == "postgresql":
        await delete_visits(opened, visitor)


async def delete_visits(db: Database, visitor: str) -> None:
    async with db.connection() as connection:
        await connection.execute("DELETE FROM station_visits WHERE visitor = ?", visitor)


@pytest.fixture
def statements(backend: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the request connections executed (``Connection.execute``)."""
    seen: list[str] = []
    kind = CONNECTIONS[backend]
    original = kind.execute

    async def execute(self: Any, query: str, *args: Any) -> None:
        seen.append(query.split(" ", 1)[0])
        await original(self, query, *args)

    monkeypatch.setattr(kind, "execute", execute)
    return seen


async def visits_of(db: Database, visitor: str) -> list[str]:
    """The stations ``visitor`` visited, as another connection sees them (committed)."""
    rows = await db.fetch(
        "SELECT station FROM station_visits WHERE visitor = ? ORDER BY station", visitor
    )
    return [station for (station,) in rows]


def assert_given_back(db: Database) -> None:
    """No connection is checked out: closed (SQLite), back in the pool (PostgreSQL)."""
    assert db.checked_out == 0
    if isinstance(db, database.PostgresDatabase):
        stats = db.pool.get_stats()
        assert stats["pool_available"] == stats["pool_size"], stats


@pytest.mark.asyncio
async def test_a_trip_is_recorded_in_one_transaction(
    asgi_client: httpx.AsyncClient, db: Database, visitor: str, statements: list[str]
) -> None:
    trip = {"visitor": visitor, "stations": ["osl", "TOS", "OSL"]}
    response = await asgi_client.post("/visits", json=trip)
    assert response.status_code == 201, response.text
    # The counts were read on the request's connection, before its transaction committed.
    assert response.json() == {
        "visitor": visitor,
        "recorded": ["OSL", "TOS", "OSL"],
        "visits": {"OSL": 2, "TOS": 1},
    }
    assert statements == ["INSERT", "INSERT", "INSERT"]
    assert_given_back(db)
    assert await visits_of(db, visitor) == ["OSL", "OSL", "TOS"]  # committed

    listed = (await asgi_client.get("/visits")).json()["visits"]
    mine = [(v["station"], v["name"]) for v in listed if v["visitor"] == visitor]
    assert sorted(mine) == [("OSL", "Oslo"), ("OSL", "Oslo"), ("TOS", "Tromsø")]
    assert_given_back(db)


@pytest.mark.asyncio
async def test_a_failing_request_rolls_the_whole_trip_back(
    asgi_client: httpx.AsyncClient, db: Database, visitor: str, statements: list[str]
) -> None:
    """Two visits are inserted, then the third station does not exist: none is kept."""
    trip = {"visitor": visitor, "stations": ["OSL", "TOS", "XXX", "BGO"]}
    response = await asgi_client.post("/visits", json=trip)
    assert response.status_code == 400
    assert statements == ["INSERT", "INSERT"]  # they ran, on the request's connection...
    assert await visits_of(db, visitor) == []  # ...and were rolled back with the request
    assert_given_back(db)

    # The next request gets a connection of its own, in a transaction of its own.
    trip["stations"] = ["BGO"]
    assert (await asgi_client.post("/visits", json=trip)).status_code == 201
    assert await visits_of(db, visitor) == ["BGO"]


@pytest.mark.asyncio
async def test_concurrent_requests_each_have_their_own_transaction(
    asgi_client: httpx.AsyncClient, db: Database, visitor: str
) -> None:
    """Eight trips at once, every other one failing: each commits or rolls back alone.

    More requests than the PostgreSQL pool has connections (4): they wait for one.
    SQLite has one writer: they queue for its lock.
    """
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, db.checked_out)
            await asyncio.sleep(0)

    trips = [
        {"visitor": visitor, "stations": ["OSL", "XXX" if index % 2 else "TOS"]}
        for index in range(8)
    ]
    watching = asyncio.ensure_future(watch())
    try:
        responses = await asyncio.gather(*(asgi_client.post("/visits", json=t) for t in trips))
    finally:
        watching.cancel()
        await asyncio.wait([watching])
    assert most > 1  # they did overlap
    assert [r.status_code for r in responses] == [201, 400] * 4
    assert await visits_of(db, visitor) == ["OSL"] * 4 + ["TOS"] * 4
    assert_given_back(db)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"visitor": "", "stations": ["OSL"]}', b'{"visitor": "Ada"}'],
)
async def test_a_malformed_trip_is_refused_and_records_nothing(
    asgi_client: httpx.AsyncClient, db: Database, body: bytes, statements: list[str]
) -> None:
    response = await asgi_client.post("/visits", content=body)
    assert response.status_code == 400
    assert statements == []
    assert_given_back(db)


@pytest.mark.asyncio
async def test_other_methods_open_no_connection(
    asgi_client: httpx.AsyncClient, db: Database
) -> None:
    assert (await asgi_client.delete("/visits")).status_code == 405
    assert (await asgi_client.post("/visits.csv")).status_code == 405
    assert db.checked_out == 0


@pytest.fixture
def held_stream(backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[asyncio.Event]:
    """The CSV stream waits after its first row until the test sets the event."""
    kind = CONNECTIONS[backend]
    original = kind.stream
    go_on = asyncio.Event()

    async def stream(self: Any, query: str, *args: Any) -> AsyncGenerator[tuple[Any, ...]]:
        first = True
        # aclosing: when the stream is closed early, the cursor underneath closes now.
        async with contextlib.aclosing(original(self, query, *args)) as rows:
            async for row in rows:
                yield row
                if first:
                    first = False
                    await asyncio.wait_for(go_on.wait(), timeout=10)

    monkeypatch.setattr(kind, "stream", stream)
    yield go_on
    go_on.set()


async def given_back(db: Database) -> None:
    """Wait (bounded) until the connection is given back: the server closes it after sending."""
    for _ in range(500):
        if db.checked_out == 0:
            break
        await asyncio.sleep(0.01)
    assert_given_back(db)


@pytest.mark.asyncio
async def test_the_csv_streams_from_a_connection_held_until_the_last_chunk(
    server: str,
    asgi_client: httpx.AsyncClient,
    db: Database,
    visitor: str,
    held_stream: asyncio.Event,
) -> None:
    """Under a real server: the view has returned, the rows are still being read."""
    trip = {"visitor": visitor, "stations": ["BGO", "OSL"]}
    assert (await asgi_client.post("/visits", json=trip)).status_code == 201
    async with (
        httpx.AsyncClient(base_url=server, timeout=10) as client,
        client.stream("GET", "/visits.csv") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        chunks = response.aiter_text()
        received = await anext(chunks)
        while received.count("\n") < 2:  # the header and the first row
            received += await anext(chunks)
        assert received.startswith("station,visitor,visited_at\r\n")
        assert db.checked_out == 1  # the view returned long ago; the rows are still read
        if isinstance(db, database.PostgresDatabase):
            rows = await db.fetch(
                "SELECT state FROM pg_stat_activity WHERE application_name = ?",
                "weather-demo GET /visits.csv",
            )
            assert ("idle in transaction",) in rows  # between two chunks, in its transaction
        held_stream.set()
        received += "".join([chunk async for chunk in chunks])
    mine = [line for line in received.splitlines() if f",{visitor}," in line]
    assert [line.split(",")[0] for line in mine] == ["BGO", "OSL"]
    await given_back(db)


@pytest.mark.asyncio
async def test_a_client_that_leaves_mid_stream_gets_its_connection_given_back(
    server: str,
    asgi_client: httpx.AsyncClient,
    db: Database,
    visitor: str,
    held_stream: asyncio.Event,
) -> None:
    trip = {"visitor": visitor, "stations": ["TOS"]}
    assert (await asgi_client.post("/visits", json=trip)).status_code == 201
    async with (
        httpx.AsyncClient(base_url=server, timeout=10) as client,
        client.stream("GET", "/visits.csv") as response,
    ):
        assert (await anext(response.aiter_text())).startswith("station,")
        assert db.checked_out == 1
    # The client closed the connection without reading the rest: the request is
    # aborted (RequestAborted is thrown into `conn`), and the connection goes back.
    await given_back(db)
