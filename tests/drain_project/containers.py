"""One resource: a psycopg pool tagged with ``LC_DRAIN_APP_NAME``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool

POOL_SIZE = 4


async def postgres_pool() -> AsyncIterator[AsyncConnectionPool]:
    """``POOL_SIZE`` connections, all open before the worker serves."""
    pool = AsyncConnectionPool(
        os.environ["LC_DRAIN_DSN"],
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        open=False,
        timeout=30,
        kwargs={"application_name": os.environ["LC_DRAIN_APP_NAME"], "connect_timeout": 5},
    )
    async with pool:
        await pool.wait(timeout=15)
        yield pool


class Container(containers.DeclarativeContainer):
    pool = providers.Resource(postgres_pool)
