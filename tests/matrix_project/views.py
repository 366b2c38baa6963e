"""Every kind of view, for every kind of value: each does a real operation with it.

A view answers ``{"who": "<kind>/<view>", "result": ...}``, where the result is what
the operation returned. Async views use async values directly and sync values
through ``sync_to_async``; sync views use sync values directly and async values
through ``async_to_sync`` (docs/how-to/sync-views.md), which runs them on the
serving loop that opened them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import httpx
import redis
import redis.asyncio
from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpRequest, JsonResponse
from django.views import View
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lifespan_container import Provide, inject
from tests.matrix_project.containers import TAG, Container
from tests.matrix_project.matrix import counter_key

Body = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])

QUERY = "SELECT 1, current_setting('application_name')"
"""One row: 1, and the connection's application_name (which resource it belongs to)."""


# -- what each view does with the value ---------------------------------------------------


async def use_redis_async(client: redis.asyncio.Redis, who: str) -> Body:
    pong = await client.ping()
    count = await client.incr(counter_key(TAG, who))
    return {"ping": pong, "incr": count}


def use_redis_sync(client: redis.Redis, who: str) -> Body:
    pong = client.ping()
    count = client.incr(counter_key(TAG, who))
    return {"ping": pong, "incr": count}


async def use_psycopg_async_pool(pool: AsyncConnectionPool, who: str) -> Body:
    async with pool.connection() as connection:
        cursor = await connection.execute(QUERY)
        row = await cursor.fetchone()
    assert row is not None
    return {"one": row[0], "application_name": row[1]}


def use_psycopg_pool(pool: ConnectionPool, who: str) -> Body:
    with pool.connection() as connection:
        row = connection.execute(QUERY).fetchone()
    assert row is not None
    return {"one": row[0], "application_name": row[1]}


async def use_asyncpg_pool(pool: Any, who: str) -> Body:
    row = await pool.fetchrow(QUERY)
    return {"one": row[0], "application_name": row[1]}


async def use_sqlalchemy_async_engine(engine: AsyncEngine, who: str) -> Body:
    async with engine.connect() as connection:
        row = (await connection.execute(text(QUERY))).one()
    return {"one": row[0], "application_name": row[1]}


async def use_httpx_async(client: httpx.AsyncClient, who: str) -> Body:
    response = await client.get(f"/echo/{who}")
    return {"status": response.status_code, "body": response.json()}


def use_httpx_sync(client: httpx.Client, who: str) -> Body:
    response = client.get(f"/echo/{who}")
    return {"status": response.status_code, "body": response.json()}


async def use_aiohttp_session(session: aiohttp.ClientSession, who: str) -> Body:
    async with session.get(f"/echo/{who}") as response:
        return {"status": response.status, "body": await response.json()}


@dataclass(frozen=True)
class Kind:
    """A kind of value: its resource, and what a view does with it (async or sync)."""

    name: str
    provider: Any
    use_async: Callable[[Any, str], Awaitable[Body]] | None = None
    use_sync: Callable[[Any, str], Body] | None = None

    async def in_async_view(self, value: Any, who: str) -> Body:
        if self.use_async is not None:
            return await self.use_async(value, who)
        assert self.use_sync is not None
        return await sync_to_async(self.use_sync)(value, who)

    def in_sync_view(self, value: Any, who: str) -> Body:
        if self.use_async is not None:
            return async_to_sync(self.use_async)(value, who)
        assert self.use_sync is not None
        return self.use_sync(value, who)


KINDS = {
    kind.name: kind
    for kind in (
        Kind("redis_async", Container.redis_async, use_async=use_redis_async),
        Kind("redis_sync", Container.redis_sync, use_sync=use_redis_sync),
        Kind("psycopg_async_pool", Container.psycopg_async_pool, use_async=use_psycopg_async_pool),
        Kind("psycopg_pool", Container.psycopg_pool, use_sync=use_psycopg_pool),
        Kind("asyncpg_pool", Container.asyncpg_pool, use_async=use_asyncpg_pool),
        Kind(
            "sqlalchemy_async_engine",
            Container.sqlalchemy_async_engine,
            use_async=use_sqlalchemy_async_engine,
        ),
        Kind("httpx_async", Container.httpx_async, use_async=use_httpx_async),
        Kind("httpx_sync", Container.httpx_sync, use_sync=use_httpx_sync),
        Kind("aiohttp_session", Container.aiohttp_session, use_async=use_aiohttp_session),
    )
}


# -- the views: one of each kind per kind of value ----------------------------------------


def named(qualname: str) -> Callable[[F], F]:
    """Name a generated function, so that errors (and @inject's) say which cell it is."""

    def rename(func: F) -> F:
        func.__qualname__ = qualname
        func.__name__ = qualname.rpartition(".")[2]
        return func

    return rename


def async_function(kind: Kind) -> Callable[..., Any]:
    who = f"{kind.name}/async_function"

    @inject
    @named(f"{kind.name}_async_function")
    async def view(request: HttpRequest, value: Any = Provide[kind.provider]) -> JsonResponse:
        return JsonResponse({"who": who, "result": await kind.in_async_view(value, who)})

    return view


def sync_function(kind: Kind) -> Callable[..., Any]:
    who = f"{kind.name}/sync_function"

    @inject
    @named(f"{kind.name}_sync_function")
    def view(request: HttpRequest, value: Any = Provide[kind.provider]) -> JsonResponse:
        return JsonResponse({"who": who, "result": kind.in_sync_view(value, who)})

    return view


def class_async(kind: Kind) -> Callable[..., Any]:
    who = f"{kind.name}/class_async"
    qualname = f"{kind.name}_ClassAsync"

    class ClassAsync(View):
        __qualname__ = qualname

        @inject
        @named(f"{qualname}.get")
        async def get(
            self, request: HttpRequest, value: Any = Provide[kind.provider]
        ) -> JsonResponse:
            return JsonResponse({"who": who, "result": await kind.in_async_view(value, who)})

    return ClassAsync.as_view()


def class_sync(kind: Kind) -> Callable[..., Any]:
    who = f"{kind.name}/class_sync"
    qualname = f"{kind.name}_ClassSync"

    class ClassSync(View):
        __qualname__ = qualname

        @inject
        @named(f"{qualname}.get")
        def get(self, request: HttpRequest, value: Any = Provide[kind.provider]) -> JsonResponse:
            return JsonResponse({"who": who, "result": kind.in_sync_view(value, who)})

    return ClassSync.as_view()


def drf_apiview(kind: Kind) -> Callable[..., Any]:
    who = f"{kind.name}/drf_apiview"
    qualname = f"{kind.name}_DRFAPIView"

    class DRFAPIView(APIView):
        __qualname__ = qualname

        @inject
        @named(f"{qualname}.get")
        def get(self, request: Request, value: Any = Provide[kind.provider]) -> Response:
            return Response({"who": who, "result": kind.in_sync_view(value, who)})

    return DRFAPIView.as_view()


def drf_api_view(kind: Kind) -> Callable[..., Any]:
    who = f"{kind.name}/drf_api_view"

    @api_view(["GET"])
    @inject
    @named(f"{kind.name}_drf_api_view")
    def view(request: Request, value: Any = Provide[kind.provider]) -> Response:
        return Response({"who": who, "result": kind.in_sync_view(value, who)})

    return view


VIEWS: dict[str, Callable[[Kind], Callable[..., Any]]] = {
    "async_function": async_function,
    "sync_function": sync_function,
    "class_async": class_async,
    "class_sync": class_sync,
    "drf_apiview": drf_apiview,
    "drf_api_view": drf_api_view,
}


async def echo(request: HttpRequest, who: str) -> JsonResponse:
    """What the HTTP clients call: this server itself."""
    return JsonResponse({"echo": who})
