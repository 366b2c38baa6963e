"""Containers for the served test project; each resource records its open and close."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from dependency_injector import containers, providers

from lifespan_container.health import health_check
from tests.project.events import record


async def http_client() -> AsyncIterator[str]:
    record("open http")
    try:
        yield "http-client"
    finally:
        record("close http")


def cache() -> Iterator[str]:
    record("open cache")
    try:
        yield "cache"
    finally:
        record("close cache")


async def db_pool() -> AsyncIterator[str]:
    raise ConnectionRefusedError("could not connect to 10.255.255.1:5432")
    yield "never"  # type: ignore[unreachable]  # pragma: no cover


async def upstream_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=os.environ.get("LC_UPSTREAM", "http://127.0.0.1:9")) as c:
        yield c


async def postgres_pool() -> AsyncIterator[object]:
    """A real psycopg pool: LC_DATABASE_URL, LC_POOL_SIZE connections, tagged LC_APP_NAME.

    ``None`` when LC_DATABASE_URL is not set.
    """
    if not os.environ.get("LC_DATABASE_URL"):
        yield None
        return
    from psycopg_pool import AsyncConnectionPool  # noqa: PLC0415

    size = int(os.environ.get("LC_POOL_SIZE", "4"))
    pool = AsyncConnectionPool(
        os.environ["LC_DATABASE_URL"],
        min_size=size,
        max_size=size,
        open=False,
        timeout=30,
        kwargs={"application_name": os.environ.get("LC_APP_NAME", "lc-matrix")},
    )
    record("open pool")
    async with pool:
        await pool.wait(timeout=float(os.environ.get("LC_POOL_WAIT", "30")))
        try:
            yield pool
        finally:
            record("close pool")


class Container(containers.DeclarativeContainer):
    http = providers.Resource(http_client)
    cache = providers.Resource(cache)
    upstream = providers.Resource(upstream_client)
    pool = providers.Resource(postgres_pool)


class FailingContainer(Container):
    db_pool = providers.Resource(db_pool)


async def wait_for_file(variable: str) -> None:
    """Wait until the file named by env ``variable`` exists (not at all if it is unset).

    Bounded: the lifespan's own timeouts cancel it, and it gives up after 60 s.
    """
    name = os.environ.get(variable)
    for _ in range(3000):
        if not name or Path(name).exists():  # noqa: ASYNC240 (a stat, in a test project)
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{name} did not appear within 60 s")


async def held() -> AsyncIterator[str]:
    """Opens when LC_RELEASE_STARTUP exists; closes when LC_RELEASE_SHUTDOWN exists."""
    record("held opening")
    await wait_for_file("LC_RELEASE_STARTUP")
    record("held open")
    try:
        yield "held"
    finally:
        record("held closing")
        await wait_for_file("LC_RELEASE_SHUTDOWN")
        record("held closed")


async def redis_client(url: str | None) -> AsyncIterator[object]:
    """A real redis.asyncio client for ``url``; ``None`` when it is not set."""
    if not url:
        yield None
        return
    import redis.asyncio  # noqa: PLC0415

    client = redis.asyncio.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


class OperationsContainer(Container):
    """The probes' container. LC_RELEASE_STARTUP / LC_RELEASE_SHUTDOWN hold the lifespan;
    LC_REDIS_URL opens a real Redis client, LC_BROKEN_REDIS_URL one whose PING fails;
    LC_HANGING_CHECK=1 makes the check of ``held`` never finish."""

    held = providers.Resource(held)
    redis = providers.Resource(redis_client, os.environ.get("LC_REDIS_URL"))
    broken_redis = providers.Resource(redis_client, os.environ.get("LC_BROKEN_REDIS_URL"))


@health_check(OperationsContainer.held)
async def held_is_fine(value: str) -> bool:
    if os.environ.get("LC_HANGING_CHECK") == "1":
        await asyncio.Event().wait()  # never set: only the check's timeout ends it
    return value == "held"
