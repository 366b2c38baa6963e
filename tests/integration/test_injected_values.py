"""Injection hands over resource values as they are: never awaited, entered or closed.

Real client libraries give values that look asynchronous (``redis.asyncio.Redis``
defines ``__await__``, pools define ``__aenter__``). Only the lifecycle opens and
closes a resource; ``@inject`` passes it on, on the first call as on the hundredth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Self

import pytest
from asgiref.sync import sync_to_async
from dependency_injector import containers, providers

from lifespan_container import Provide, inject
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.testing import use_container
from tests.conftest import Registry
from tests.lifespan_driver import SHUTDOWN_COMPLETE, STARTUP_COMPLETE, Lifespan


class LooksAsync:
    """A client the way redis.asyncio's is: awaitable, an async and a sync context manager."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.closed = False

    def __await__(self) -> Any:
        self.calls.append("__await__")
        return self._self().__await__()

    async def _self(self) -> LooksAsync:
        return self

    async def __aenter__(self) -> Self:
        self.calls.append("__aenter__")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.calls.append("__aexit__")

    def __enter__(self) -> Self:
        self.calls.append("__enter__")
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls.append("__exit__")

    async def close(self) -> None:
        self.calls.append("close")

    def cancel(self) -> None:
        self.calls.append("cancel")


async def open_client() -> AsyncIterator[LooksAsync]:
    client = LooksAsync()
    yield client
    client.closed = True


def open_sync_client() -> Iterator[LooksAsync]:
    client = LooksAsync()
    yield client
    client.closed = True


class ValuesContainer(containers.DeclarativeContainer):
    client = providers.Resource(open_client)
    sync_client = providers.Resource(open_sync_client)
    singleton = providers.Singleton(LooksAsync)


@pytest.fixture
def views(registry: Registry) -> tuple[Any, Any]:
    """The two views, defined per test and forgotten after it (they name this container)."""

    @inject
    def sync_view(
        client: LooksAsync = Provide[ValuesContainer.client],
        sync_client: LooksAsync = Provide[ValuesContainer.sync_client],
        singleton: LooksAsync = Provide[ValuesContainer.singleton],
    ) -> list[LooksAsync]:
        return [client, sync_client, singleton]

    @inject
    async def async_view(
        client: LooksAsync = Provide[ValuesContainer.client],
        sync_client: LooksAsync = Provide[ValuesContainer.sync_client],
        singleton: LooksAsync = Provide[ValuesContainer.singleton],
    ) -> list[LooksAsync]:
        return [client, sync_client, singleton]

    return sync_view, async_view


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with use_container(ValuesContainer()) as runtime:
        yield runtime


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_awaitable_values_are_handed_over_untouched_from_the_first_call(
    runtime: Runtime, views: tuple[Any, Any], kind: str
) -> None:
    """The first call and the next ones get the open values, with nothing called on them."""
    sync_view, async_view = views
    lifespan = Lifespan(LifespanHandler(runtime))
    assert await lifespan.startup() == STARTUP_COMPLETE
    container: Any = runtime.container
    expected = [container.client(), container.sync_client(), container.singleton()]
    for _ in range(3):
        got = await (sync_to_async(sync_view)() if kind == "sync" else async_view())
        assert got == expected
        assert [value is want for value, want in zip(got, expected, strict=True)] == [True] * 3
    assert [value.calls for value in expected] == [[], [], []]
    assert not any(value.closed for value in expected)
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert [value.calls for value in expected] == [[], [], []]
    assert expected[0].closed
    assert expected[1].closed


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_awaitable_value_from_an_override_is_not_awaited(
    runtime: Runtime, views: tuple[Any, Any], kind: str
) -> None:
    """A test's fake that defines ``__await__`` is passed on as it is, too."""
    sync_view, async_view = views
    fake = LooksAsync()
    container: Any = runtime.container
    lifespan = Lifespan(LifespanHandler(runtime))
    assert await lifespan.startup() == STARTUP_COMPLETE
    with container.client.override(providers.Object(fake)):
        got = await (sync_to_async(sync_view)() if kind == "sync" else async_view())
    assert got[0] is fake
    assert fake.calls == []
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()


@pytest.mark.asyncio
async def test_a_future_from_an_async_provider_is_still_awaited(
    runtime: Runtime, registry: Registry
) -> None:
    """What dependency-injector returns for async work (a coroutine or future) is awaited."""

    async def make() -> str:
        await asyncio.sleep(0)
        return "made"

    @inject
    async def view(value: Any = Provide[ValuesContainer.singleton]) -> Any:
        return value

    container: Any = runtime.container
    with container.singleton.override(providers.Coroutine(make)):
        assert await view() == "made"
