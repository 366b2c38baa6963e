"""The demo's database: a real PostgreSQL pool, or SQLite when no server is configured.

Both give the views the same small async interface, so the views do not care
which one runs. The schema and a few rows are created when the resource opens.

``Database.fetch`` runs one statement on any connection (the app-scoped ``db``
resource). ``Database.connection()`` checks out one connection in a transaction,
for the request-scoped ``conn`` resource (see ``weather.containers.checkout``):
committed when the block ends, rolled back when an exception ends it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, Protocol

STATIONS = [("BGO", "Bergen", 60.39), ("OSL", "Oslo", 59.91), ("TOS", "Tromsø", 69.65)]
SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS stations "
        "(code TEXT PRIMARY KEY, name TEXT NOT NULL, latitude REAL NOT NULL)"
    ),
    (  # one row per station of a trip (the /visits view); times in ISO 8601, UTC
        "CREATE TABLE IF NOT EXISTS station_visits (station TEXT NOT NULL REFERENCES "
        "stations (code), visitor TEXT NOT NULL, visited_at TEXT NOT NULL)"
    ),
)
SQLITE_BUSY_TIMEOUT = 5.0
"""Seconds a SQLite transaction waits for another one's write lock."""


class Connection(Protocol):
    """One connection, checked out for one transaction (``?`` placeholders)."""

    async def execute(self, query: str, *args: Any) -> None: ...

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]: ...

    def stream(self, query: str, *args: Any) -> AsyncGenerator[tuple[Any, ...]]:
        """The rows as they are read, not all at once (async-iterate it, then aclose it)."""
        ...


class Database(Protocol):
    """What the views need from the database."""

    backend: str
    checked_out: int
    """Blocks of :meth:`connection` not finished yet (their connection not given back)."""

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]: ...

    def connection(self, label: str = "") -> contextlib.AbstractAsyncContextManager[Connection]:
        """One connection in a transaction, for a block: committed, or rolled back."""
        ...


class PostgresConnection:
    """A pooled psycopg ``AsyncConnection`` inside a transaction."""

    def __init__(self, connection: Any) -> None:
        self.raw = connection

    async def execute(self, query: str, *args: Any) -> None:
        await self.raw.execute(query.replace("?", "%s"), args)

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        cursor = await self.raw.execute(query.replace("?", "%s"), args)
        return list(await cursor.fetchall())

    async def stream(self, query: str, *args: Any) -> AsyncGenerator[tuple[Any, ...]]:
        # A server-side cursor: PostgreSQL sends the rows in batches as they are read.
        async with self.raw.cursor(name="weather_demo_stream") as cursor:
            await cursor.execute(query.replace("?", "%s"), args)
            async for row in cursor:
                yield row


class PostgresDatabase:
    """A ``psycopg_pool.AsyncConnectionPool`` behind the demo's interface."""

    backend = "postgresql"

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.checked_out = 0

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(query.replace("?", "%s"), args)
            return list(await cursor.fetchall())

    @contextlib.asynccontextmanager
    async def connection(self, label: str = "") -> AsyncIterator[Connection]:
        """A connection from the pool, in a transaction; back to the pool at the end.

        ``label`` names the transaction in ``pg_stat_activity.application_name``.
        """
        self.checked_out += 1
        try:
            async with self.pool.connection() as connection, connection.transaction():
                if label:  # set for this transaction only
                    await connection.execute(
                        "SELECT set_config('application_name', %s, true)",
                        (f"weather-demo {label}"[:63],),
                    )
                yield PostgresConnection(connection)
        finally:
            self.checked_out -= 1

    async def seed(self) -> None:
        async with self.pool.connection() as connection:
            for statement in SCHEMA:
                await connection.execute(statement)
            await connection.cursor().executemany(
                "INSERT INTO stations VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", STATIONS
            )


class SQLiteConnection:
    """An aiosqlite connection inside a transaction."""

    def __init__(self, connection: Any) -> None:
        self.raw = connection

    async def execute(self, query: str, *args: Any) -> None:
        await self.raw.execute(query, args)

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        async with self.raw.execute(query, args) as cursor:
            return list(await cursor.fetchall())

    async def stream(self, query: str, *args: Any) -> AsyncGenerator[tuple[Any, ...]]:
        async with self.raw.execute(query, args) as cursor:
            async for row in cursor:  # fetched 64 rows at a time
                yield row


class SQLiteDatabase:
    """One aiosqlite connection behind the demo's interface (SQLite has one writer).

    :meth:`connection` opens another connection to the same file for each block.
    """

    backend = "sqlite"

    def __init__(self, connection: Any, path: str) -> None:
        self.shared = connection
        self.path = path
        self.checked_out = 0

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        async with self.shared.execute(query, args) as cursor:
            return list(await cursor.fetchall())

    @contextlib.asynccontextmanager
    async def connection(self, label: str = "") -> AsyncIterator[Connection]:
        """A connection of its own, in a transaction; closed at the end.

        ``BEGIN IMMEDIATE`` takes SQLite's one write lock at once: a concurrent
        transaction waits for it (up to ``SQLITE_BUSY_TIMEOUT``) rather than
        failing when it first writes.
        """
        import aiosqlite  # noqa: PLC0415

        self.checked_out += 1
        try:
            async with aiosqlite.connect(
                self.path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT
            ) as connection:
                await connection.execute("BEGIN IMMEDIATE")
                try:
                    yield SQLiteConnection(connection)
                except BaseException:
                    await connection.execute("ROLLBACK")
                    raise
                await connection.execute("COMMIT")
        finally:
            self.checked_out -= 1

    async def seed(self) -> None:
        for statement in SCHEMA:
            await self.shared.execute(statement)
        await self.shared.executemany("INSERT OR IGNORE INTO stations VALUES (?, ?, ?)", STATIONS)
        await self.shared.commit()


async def open_database(url: str) -> AsyncIterator[Database]:
    """The ``db`` resource: open the database named by ``url``, seed it; close it."""
    if url.startswith(("postgresql://", "postgres://")):
        from psycopg_pool import AsyncConnectionPool  # noqa: PLC0415

        pool = AsyncConnectionPool(
            url, min_size=1, max_size=4, open=False, kwargs={"application_name": "weather-demo"}
        )
        async with pool:
            await pool.wait(timeout=10)
            postgres = PostgresDatabase(pool)
            await postgres.seed()
            yield postgres
        return

    import aiosqlite  # noqa: PLC0415

    path = url.removeprefix("sqlite:///")
    async with aiosqlite.connect(path) as connection:
        sqlite = SQLiteDatabase(connection, path)
        await sqlite.seed()
        yield sqlite
