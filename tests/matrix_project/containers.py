"""One resource per kind of value users inject, declared the way users declare them.

Async generator functions, sync generator functions, and context manager classes
given to ``providers.Resource`` directly. Every Redis client and PostgreSQL
connection carries the name ``matrix.connection_name(tag, kind)``, so the test can
find them in ``CLIENT LIST`` and ``pg_stat_activity``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import asyncpg
import httpx
import redis
import redis.asyncio
from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.matrix_project.matrix import connection_name

TAG = os.environ.get("LC_MATRIX_TAG", "lc-matrix")
DSN = os.environ.get("LC_MATRIX_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LC_MATRIX_REDIS", "redis://127.0.0.1:6379/0")
UPSTREAM = os.environ.get("LC_MATRIX_UPSTREAM", "http://127.0.0.1:8000")


def name(kind: str) -> str:
    return connection_name(TAG, kind)


async def redis_async_client(url: str, client_name: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(url, client_name=client_name)
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()


def redis_sync_client(url: str, client_name: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(url, client_name=client_name) as client:
        client.ping()
        yield client


async def async_connection_pool(
    dsn: str, application_name: str
) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(
        dsn, min_size=1, max_size=2, open=False, kwargs={"application_name": application_name}
    )
    async with pool:
        await pool.wait()
        yield pool


async def asyncpg_connection_pool(dsn: str, application_name: str) -> AsyncIterator[Any]:
    async with asyncpg.create_pool(
        dsn, min_size=1, max_size=2, server_settings={"application_name": application_name}
    ) as pool:
        yield pool


async def aiohttp_client_session(base_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=base_url) as session:
        yield session


async def async_engine(dsn: str, application_name: str) -> AsyncIterator[AsyncEngine]:
    url = make_url(dsn).set(drivername="postgresql+psycopg")
    engine = create_async_engine(
        url, pool_size=2, connect_args={"application_name": application_name}
    )
    try:
        async with engine.connect() as connection:  # connect at startup, like the pools
            await connection.execute(text("SELECT 1"))
        yield engine
    finally:
        await engine.dispose()


class Container(containers.DeclarativeContainer):
    redis_async = providers.Resource(redis_async_client, REDIS_URL, name("redis_async"))
    redis_sync = providers.Resource(redis_sync_client, REDIS_URL, name("redis_sync"))
    psycopg_async_pool = providers.Resource(async_connection_pool, DSN, name("psycopg_async_pool"))
    psycopg_pool = providers.Resource(
        ConnectionPool,
        DSN,
        min_size=1,
        max_size=2,
        open=False,
        kwargs={"application_name": name("psycopg_pool")},
    )
    asyncpg_pool = providers.Resource(asyncpg_connection_pool, DSN, name("asyncpg_pool"))
    sqlalchemy_async_engine = providers.Resource(async_engine, DSN, name("sqlalchemy_async_engine"))
    httpx_async = providers.Resource(httpx.AsyncClient, base_url=UPSTREAM)
    httpx_sync = providers.Resource(httpx.Client, base_url=UPSTREAM)
    aiohttp_session = providers.Resource(aiohttp_client_session, UPSTREAM)
