"""The container the test settings name: real resources of each kind."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
from dependency_injector import containers, providers


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
