"""The demo's resources, declared once: they open at server startup and close at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from dependency_injector import containers, providers
from django.conf import settings

from lifespan_container.health import health_check
from weather.database import Database, open_database


async def upstream_client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The weather API client: one connection pool for the whole process."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
        yield client


async def redis_client(url: str | None) -> AsyncIterator[object | None]:
    """A Redis client when ``REDIS_URL`` is set; ``None`` (no cache) otherwise."""
    if not url:
        yield None
        return
    import redis.asyncio as redis  # noqa: PLC0415

    client = redis.Redis.from_url(url, client_name="weather-demo")
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()


def django_setting(name: str) -> Any:
    """A Django setting, read when the resource opens (so tests can override it)."""
    return getattr(settings, name)


class Container(containers.DeclarativeContainer):
    http = providers.Resource(upstream_client, providers.Callable(django_setting, "UPSTREAM_URL"))
    db = providers.Resource(open_database, providers.Callable(django_setting, "DATABASE_URL"))
    cache = providers.Resource(redis_client, providers.Callable(django_setting, "REDIS_URL"))


@health_check(Container.db, timeout=2.0)
async def database_answers(db: Database) -> None:
    """The health view's check of the database (Redis and httpx get the defaults)."""
    await db.fetch("SELECT 1")
