"""Containers for the served test project; each resource records its open and close."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
from dependency_injector import containers, providers

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
        await pool.wait(timeout=30)
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
