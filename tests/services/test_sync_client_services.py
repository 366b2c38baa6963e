"""Django's sync test client with a real PostgreSQL pool and a real Redis client, opened
by the real lifespan on its loop thread (``with lifespan()``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from dependency_injector import containers, providers
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path
from psycopg_pool import AsyncConnectionPool
from rest_framework.test import APIClient

from lifespan_container import get_container
from lifespan_container.testing import lifespan, use_container

pytestmark = pytest.mark.services


async def postgres_pool(dsn: str, name: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(
        dsn, min_size=1, max_size=2, open=False, kwargs={"application_name": name}
    )
    async with pool:
        await pool.wait(timeout=5)
        yield pool


async def redis_client(url: str, name: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(url, client_name=name)
    try:
        yield client
    finally:
        await client.aclose()


class ServicesContainer(containers.DeclarativeContainer):
    config = providers.Configuration()
    pool = providers.Resource(postgres_pool, config.dsn, config.name)
    redis = providers.Resource(redis_client, config.redis_url, config.name)


async def application_name(request: HttpRequest) -> JsonResponse:
    async with get_container().pool().connection() as connection:
        cursor = await connection.execute("SELECT current_setting('application_name')")
        row = await cursor.fetchone()
    return JsonResponse({"application_name": row[0] if row else None})


async def count(request: HttpRequest, key: str) -> JsonResponse:
    return JsonResponse({"count": await get_container().redis().incr(key)})


urlpatterns = [path("pool", application_name), path("count/<str:key>", count)]


@pytest.fixture
def services(settings: Any, postgres_dsn: str, redis_url: str) -> Iterator[str]:
    settings.ROOT_URLCONF = __name__
    name = f"lc-sync-client-{uuid.uuid4().hex[:8]}"
    container = ServicesContainer()
    container.config.from_dict({"dsn": postgres_dsn, "name": name, "redis_url": redis_url})
    with use_container(container):
        yield name


def test_the_sync_client_reads_from_the_pool_the_lifespan_opened(services: str) -> None:
    with lifespan():
        for client in (Client(), APIClient()):
            response = client.get("/pool")
            assert response.json() == {"application_name": services}


def test_the_sync_client_counts_in_redis_with_the_lifespans_client(
    services: str, redis_url: str
) -> None:
    """One client, opened at startup and closed at shutdown, serves every request."""
    key = f"{services}-count"

    def connections() -> int:
        return sum(client["name"] == services for client in inspector.client_list())

    with redis.Redis.from_url(redis_url, decode_responses=True) as inspector:
        try:
            with lifespan():
                answers = [Client().get(f"/count/{key}").json()["count"] for _ in range(3)]
                during = connections()
            after = connections()
        finally:
            inspector.delete(key)
    assert (answers, during, after) == ([1, 2, 3], 1, 0)
