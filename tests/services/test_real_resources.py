"""Real resources through the handler: httpx, a PostgreSQL pool, a Redis client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool

from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.signals import asgi_startup
from tests.conftest import Connect
from tests.lifespan_driver import SHUTDOWN_COMPLETE, STARTUP_COMPLETE, Lifespan
from tests.upstream import Upstream

pytestmark = pytest.mark.asyncio


async def http_client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        yield client


async def pg_pool(dsn: str, application_name: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(
        dsn, min_size=2, max_size=4, open=False, kwargs={"application_name": application_name}
    )
    async with pool:
        await pool.wait(timeout=10)
        yield pool


async def redis_client(url: str, client_name: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url, client_name=client_name)
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()


async def pg_connections(dsn: str, application_name: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def redis_connections(url: str, client_name: str) -> int:
    async with aioredis.Redis.from_url(url) as client:
        clients: list[dict[str, Any]] = await client.client_list()
        return sum(1 for entry in clients if entry.get("name") == client_name)


async def settled(probe: Any, expected: int) -> int:
    """Poll an external count until it reaches ``expected`` (a closed socket is seen
    by the server a moment later); at most 100 tries."""
    for _ in range(100):
        value = int(await probe())
        if value == expected:
            return value
        await asyncio.sleep(0.02)
    return value


async def test_httpx_client_opens_at_startup_and_closes_at_shutdown(connect: Connect) -> None:
    """A startup receiver uses the open client against a local server; shutdown closes it."""
    async with Upstream() as upstream:
        built = containers.DynamicContainer()
        built.http = providers.Resource(http_client, upstream.url)
        seen: list[Any] = []

        async def warm(**kwargs: Any) -> None:
            response = await built.http().get("/warm")
            seen.append(response.json())

        connect(asgi_startup, warm)
        lifespan = Lifespan(LifespanHandler(Runtime(built)))
        assert await lifespan.startup() == STARTUP_COMPLETE
        client = built.http()
        assert seen == [{"path": "/warm"}]
        assert (await client.get("/again")).json() == {"path": "/again"}
        assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
        await lifespan.finish()
        assert client.is_closed
        assert upstream.requests == 2


@pytest.mark.services
async def test_postgres_pool_connections_live_exactly_as_long_as_the_lifespan(
    postgres_dsn: str,
) -> None:
    """`pg_stat_activity` shows the pool's connections while serving, none after."""
    name = f"lc-test-{uuid.uuid4().hex[:8]}"
    built = containers.DynamicContainer()
    built.db_pool = providers.Resource(pg_pool, postgres_dsn, name)
    lifespan = Lifespan(LifespanHandler(Runtime(built)))

    assert await pg_connections(postgres_dsn, name) == 0
    assert await lifespan.startup() == STARTUP_COMPLETE
    pool = built.db_pool()
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT 1")
        assert await cursor.fetchone() == (1,)
    assert await settled(lambda: pg_connections(postgres_dsn, name), 2) == 2

    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert pool.closed
    assert await settled(lambda: pg_connections(postgres_dsn, name), 0) == 0


@pytest.mark.services
async def test_redis_client_lives_exactly_as_long_as_the_lifespan(redis_url: str) -> None:
    """Redis lists the named client connection while serving, and not after shutdown."""
    name = f"lc-test-{uuid.uuid4().hex[:8]}"
    built = containers.DynamicContainer()
    built.cache = providers.Resource(redis_client, redis_url, name)
    lifespan = Lifespan(LifespanHandler(Runtime(built)))

    assert await lifespan.startup() == STARTUP_COMPLETE
    client = built.cache()
    await client.set(name, "1")
    assert await client.get(name) == b"1"
    await client.delete(name)
    assert await settled(lambda: redis_connections(redis_url, name), 1) == 1

    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert await settled(lambda: redis_connections(redis_url, name), 0) == 0


@pytest.mark.services
async def test_failing_resource_closes_the_real_pool_it_opened(postgres_dsn: str) -> None:
    """All or nothing with real parts: the pool opened before a failure is closed."""
    name = f"lc-test-{uuid.uuid4().hex[:8]}"

    async def broken(pool: AsyncConnectionPool) -> AsyncIterator[None]:
        raise ConnectionRefusedError("search cluster unreachable")
        yield  # type: ignore[unreachable]  # pragma: no cover

    built = containers.DynamicContainer()
    built.db_pool = providers.Resource(pg_pool, postgres_dsn, name)
    built.search = providers.Resource(broken, built.db_pool)
    lifespan = Lifespan(LifespanHandler(Runtime(built)))
    answer = await lifespan.startup()
    assert answer == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'search' raised ConnectionRefusedError: "
            "search cluster unreachable."
        ),
    }
    with pytest.raises(Exception, match="search cluster unreachable"):
        await lifespan.finish()
    assert await settled(lambda: pg_connections(postgres_dsn, name), 0) == 0
