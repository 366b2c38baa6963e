"""The default health checks, against the real PostgreSQL and Redis, and failing ones."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import psycopg_pool
import pytest
import redis
import redis.asyncio
from dependency_injector import containers, providers

from lifespan_container.health import default_check, run_checks
from lifespan_container.lifecycle import ResourceLifecycle
from tests.servers import free_port


async def async_pool(dsn: str) -> AsyncIterator[psycopg_pool.AsyncConnectionPool]:
    async with psycopg_pool.AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        yield pool


def sync_pool(dsn: str) -> Iterator[psycopg_pool.ConnectionPool]:
    with psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        yield pool


async def asyncpg_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(dsn, min_size=1, max_size=1) as pool:
        yield pool


async def async_redis(url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.from_url(url, socket_connect_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


def sync_redis(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        yield client
    finally:
        client.close()


async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def every_kind(dsn: str, redis_url: str) -> containers.DynamicContainer:
    built = containers.DynamicContainer()
    built.async_pool = providers.Resource(async_pool, dsn)
    built.sync_pool = providers.Resource(sync_pool, dsn)
    built.asyncpg_pool = providers.Resource(asyncpg_pool, dsn)
    built.async_redis = providers.Resource(async_redis, redis_url)
    built.sync_redis = providers.Resource(sync_redis, redis_url)
    built.http = providers.Resource(http_client)
    return built


async def checked(built: containers.Container, timeout: float = 5) -> dict[str, Any]:
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        return {r.name: r for r in await run_checks(lifecycle, timeout)}
    finally:
        assert await lifecycle.stop(10) == []


@pytest.mark.asyncio
@pytest.mark.services
async def test_every_default_check_passes_against_the_real_services(
    postgres_dsn: str, redis_url: str
) -> None:
    results = await checked(every_kind(postgres_dsn, redis_url))
    assert {name: (r.status, r.check) for name, r in results.items()} == {
        "async_pool": ("ok", "psycopg_pool.AsyncConnectionPool: SELECT 1"),
        "sync_pool": ("ok", "psycopg_pool.ConnectionPool: SELECT 1"),
        "asyncpg_pool": ("ok", "asyncpg.Pool: SELECT 1"),
        "async_redis": ("ok", "redis.asyncio.Redis: PING"),
        "sync_redis": ("ok", "redis.Redis: PING"),
        "http": ("ok", "httpx.AsyncClient: not closed"),
    }
    assert all(r.latency is not None and r.latency > 0 for r in results.values())


async def unreachable_pool(dsn: str) -> AsyncIterator[psycopg_pool.AsyncConnectionPool]:
    """Opens without connecting (min_size=0), as a pool does when the database went away."""
    pool = psycopg_pool.AsyncConnectionPool(dsn, min_size=0, max_size=1, open=False, timeout=0.5)
    async with pool:
        yield pool


async def closed_http_client() -> AsyncIterator[httpx.AsyncClient]:
    client = httpx.AsyncClient()
    await client.aclose()  # closed by mistake: every request would fail
    yield client


@pytest.mark.asyncio
@pytest.mark.services
async def test_default_checks_fail_when_the_service_is_unreachable(postgres_dsn: str) -> None:
    closed = free_port()
    built = containers.DynamicContainer()
    built.db = providers.Resource(
        unreachable_pool, f"postgresql://postgres@127.0.0.1:{closed}/test"
    )
    built.cache = providers.Resource(async_redis, f"redis://127.0.0.1:{closed}/0")
    built.http = providers.Resource(closed_http_client)
    results = await checked(built)
    assert results["db"].status == "failing"
    assert results["db"].error is not None
    assert results["db"].error.startswith("PoolTimeout: ")
    assert results["cache"].status == "failing"
    assert results["cache"].error is not None
    assert results["cache"].error.startswith("ConnectionError: ")
    assert results["http"].status == "failing"
    assert results["http"].error == "the check returned False"


def test_defaults_never_import_the_libraries_they_know() -> None:
    """A type is only looked for in a module already imported."""
    saved = sys.modules.pop("asyncpg")
    try:
        assert default_check(object()) is None
        assert "asyncpg" not in sys.modules
    finally:
        sys.modules["asyncpg"] = saved
