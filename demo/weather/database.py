"""The demo's database: a real PostgreSQL pool, or SQLite when no server is configured.

Both give the views the same small async interface, so the views do not care
which one runs. The schema and a few rows are created when the resource opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

STATIONS = [("BGO", "Bergen", 60.39), ("OSL", "Oslo", 59.91), ("TOS", "Tromsø", 69.65)]
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS stations "
    "(code TEXT PRIMARY KEY, name TEXT NOT NULL, latitude REAL NOT NULL)"
)


class Database(Protocol):
    """What the views need from the database."""

    backend: str

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]: ...


class PostgresDatabase:
    """A ``psycopg_pool.AsyncConnectionPool`` behind the demo's interface."""

    backend = "postgresql"

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(query.replace("?", "%s"), args)
            return list(await cursor.fetchall())

    async def seed(self) -> None:
        async with self.pool.connection() as connection:
            await connection.execute(SCHEMA)
            await connection.cursor().executemany(
                "INSERT INTO stations VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", STATIONS
            )


class SQLiteDatabase:
    """One aiosqlite connection behind the demo's interface (SQLite has one writer)."""

    backend = "sqlite"

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        async with self.connection.execute(query, args) as cursor:
            return list(await cursor.fetchall())

    async def seed(self) -> None:
        await self.connection.execute(SCHEMA)
        await self.connection.executemany(
            "INSERT OR IGNORE INTO stations VALUES (?, ?, ?)", STATIONS
        )
        await self.connection.commit()


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

    async with aiosqlite.connect(url.removeprefix("sqlite:///")) as connection:
        sqlite = SQLiteDatabase(connection)
        await sqlite.seed()
        yield sqlite
