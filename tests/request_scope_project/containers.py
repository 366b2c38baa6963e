"""An app-scoped pool and, per request, one of its connections holding a transaction.

``checkout`` appends to the events file (``tests/project/events.py``) what the
test process cannot see otherwise: when the connection was checked out, what the
generator saw thrown in when it was closed, and the pool once it had it back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from dependency_injector import containers, providers
from django.http import HttpRequest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from lifespan_container import CurrentRequest, RequestResource
from tests.project.events import record

POOL_SIZE = 2


async def postgres_pool() -> AsyncIterator[AsyncConnectionPool]:
    """``POOL_SIZE`` connections tagged with ``LC_RS_APP_NAME``, open before serving."""
    pool = AsyncConnectionPool(
        os.environ["LC_RS_DSN"],
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        open=False,
        timeout=30,
        kwargs={"application_name": os.environ["LC_RS_APP_NAME"], "connect_timeout": 5},
    )
    async with pool:
        await pool.wait(timeout=15)
        yield pool


def available(pool: AsyncConnectionPool) -> str:
    return f"available={pool.get_stats()['pool_available']}"


async def checkout(
    pool: AsyncConnectionPool, request: HttpRequest
) -> AsyncIterator[AsyncConnection[Any]]:
    """The request's connection, in a transaction (``?n=`` names the request)."""
    marker = request.GET.get("n", "-")
    try:
        async with pool.connection() as conn:
            record(f"open {marker} {available(pool)}")
            try:
                async with conn.transaction():
                    yield conn
            except BaseException as error:
                record(f"close {marker} {type(error).__name__}")
                raise
            else:
                record(f"close {marker} ok")
    finally:
        record(f"returned {marker} {available(pool)}")


class Container(containers.DeclarativeContainer):
    request = CurrentRequest()
    pool = providers.Resource(postgres_pool)
    conn = RequestResource(checkout, pool=pool, request=request)
