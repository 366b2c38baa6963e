"""The demo's resources, declared once.

``http``, ``db`` and ``cache`` open at server startup and close at shutdown;
``conn`` lives for one request: opened when a view of the request first asks for
it, closed after the response was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from dependency_injector import containers, providers
from django.conf import settings
from django.http import HttpRequest

from lifespan_container import CurrentRequest, RequestResource
from lifespan_container.health import health_check
from weather.database import Connection, Database, open_database


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


async def checkout(db: Database, request: HttpRequest) -> AsyncIterator[Connection]:
    """The ``conn`` request resource: one connection and one transaction for one request.

    Every ``Provide[Container.conn]`` of the request gets this connection. The
    transaction commits once the response was sent (after its last chunk, for a
    streaming one); the exception a failed request ended with (including a client
    that went away) is thrown in at the ``yield``, so it rolls back instead.
    """
    async with db.connection(label=f"{request.method} {request.path}") as connection:
        yield connection


class Container(containers.DeclarativeContainer):
    http = providers.Resource(upstream_client, providers.Callable(django_setting, "UPSTREAM_URL"))
    db = providers.Resource(open_database, providers.Callable(django_setting, "DATABASE_URL"))
    cache = providers.Resource(redis_client, providers.Callable(django_setting, "REDIS_URL"))
    conn = RequestResource(checkout, db=db, request=CurrentRequest())


@health_check(Container.db, timeout=2.0)
async def database_answers(db: Database) -> None:
    """The health view's check of the database (Redis and httpx get the defaults)."""
    await db.fetch("SELECT 1")
