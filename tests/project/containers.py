"""Containers for the served test project; each resource records its open and close."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from dependency_injector import containers, providers

from tests.project.events import record


async def http_client() -> AsyncIterator[str]:
    record("open http")
    try:
        yield "http-client"
    finally:
        record("close http")


def cache() -> Iterator[str]:
    record("open cache")
    try:
        yield "cache"
    finally:
        record("close cache")


async def db_pool() -> AsyncIterator[str]:
    raise ConnectionRefusedError("could not connect to 10.255.255.1:5432")
    yield "never"  # type: ignore[unreachable]  # pragma: no cover


class Container(containers.DeclarativeContainer):
    http = providers.Resource(http_client)
    cache = providers.Resource(cache)


class FailingContainer(Container):
    db_pool = providers.Resource(db_pool)
