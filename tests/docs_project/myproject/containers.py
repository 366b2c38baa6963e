from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool


async def http_client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        yield client


async def db_pool(conninfo: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(conninfo, open=False, timeout=2) as pool:
        await pool.wait(timeout=2)
        yield pool


class Container(containers.DeclarativeContainer):
    # Nothing listens on these: the recipes replace both before they would be opened.
    http = providers.Resource(http_client, "http://127.0.0.1:9")
    db_pool = providers.Resource(db_pool, "postgresql://127.0.0.1:9/app?connect_timeout=1")
