"""The container the test settings name: real resources of each kind."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool


async def greeting() -> AsyncIterator[str]:
    yield "hello"


async def http_client(base_url: str | None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url or "http://127.0.0.1:9") as client:
        yield client


class Files:
    """A sync resource: not bound to any event loop."""

    def __init__(self) -> None:
        self.opened_in = threading.get_ident()
        self.closed = False


def files() -> Iterator[Files]:
    resource = Files()
    try:
        yield resource
    finally:
        resource.closed = True


async def db_pool(dsn: str | None, name: str | None) -> AsyncIterator[AsyncConnectionPool | None]:
    """A real PostgreSQL pool when ``config.database_url`` is set; ``None`` otherwise."""
    if not dsn:
        yield None
        return
    pool = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=2,
        open=False,
        timeout=5,
        kwargs={"application_name": name or "lifespan-container-tests", "connect_timeout": 2},
    )
    async with pool:
        await pool.wait(timeout=5)
        yield pool


OPENED_SEARCH: list[str] = []
"""Every time the failing resource below was asked to open (the plugin tests read it)."""


async def search_index() -> AsyncIterator[str]:
    OPENED_SEARCH.append("search")
    raise ConnectionRefusedError("search cluster unreachable")
    yield "never"  # type: ignore[unreachable]  # pragma: no cover


@dataclass
class WeatherService:
    http: httpx.AsyncClient
    files: Files


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()
    greeting = providers.Resource(greeting)
    http = providers.Resource(http_client, base_url=config.upstream_url)
    files = providers.Resource(files)
    weather = providers.Factory(WeatherService, http=http, files=files)
    db_pool = providers.Resource(db_pool, config.database_url, config.application_name)


class BrokenContainer(Container):
    """The test container plus a resource that always fails to open."""

    search = providers.Resource(search_index)
