"""Containers whose resources depend on themselves, through other providers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers


async def opened(**dependencies: object) -> AsyncIterator[dict[str, object]]:
    yield dependencies


class SelfCycle(containers.DeclarativeContainer):
    """``a`` needs a Factory that needs ``a``."""

    a = providers.Resource(opened)


SelfCycle.a.add_kwargs(dep=providers.Factory(dict, x=SelfCycle.a))


class PairCycle(containers.DeclarativeContainer):
    """``a`` needs ``b`` and ``b`` needs ``a``; ``c`` is fine."""

    a = providers.Resource(opened)
    b = providers.Resource(opened, a=a)
    c = providers.Resource(opened)


PairCycle.a.add_kwargs(b=PairCycle.b)
