"""The container the test settings name, and helpers to build others per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers


async def greeting() -> AsyncIterator[str]:
    yield "hello"


class Container(containers.DeclarativeContainer):
    greeting = providers.Resource(greeting)
