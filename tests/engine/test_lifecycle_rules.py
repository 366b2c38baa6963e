"""The resource lifecycle on its own, with no Django: the guard, cancellation, names, cycles.

Everything here drives :class:`~lifespan_container.lifecycle.ResourceLifecycle`
directly in the test's event loop; no settings, no handler, no signal.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from dependency_injector import containers, providers

from lifespan_container.exceptions import ResourcesNotStartedError, WrongEventLoopError
from lifespan_container.lifecycle import ResourceEvent, ResourceLifecycle
from tests.resources import Journal, assert_all_closed, container, tracked, tracked_sync

pytestmark = pytest.mark.asyncio


# -- the guard: loop safety --------------------------------------------------------------


async def test_asking_before_startup_or_after_shutdown_is_a_clear_error(journal: Journal) -> None:
    """Outside the lifespan a resource provider raises, instead of opening a stray copy."""
    built = container(http=providers.Resource(tracked, journal, "http"))
    lifecycle = ResourceLifecycle(built)
    with pytest.raises(ResourcesNotStartedError, match="Resource 'http' is not open"):
        built.http()
    assert await lifecycle.start() == []
    assert built.http() == "http"
    assert await lifecycle.stop(10) == []
    with pytest.raises(ResourcesNotStartedError, match="lifespan startup"):
        built.http()
    assert journal.entries == ["open http", "close http"]


async def test_asking_from_another_event_loop_is_a_clear_error(journal: Journal) -> None:
    """An async resource goes only to its own loop and to threads that can reach it."""
    built = container(
        http=providers.Resource(tracked, journal, "http"),
        settings=providers.Resource(tracked_sync, journal, "settings"),
    )
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []

    def in_a_new_loop(provider: providers.Provider[Any]) -> Any:
        async def ask() -> Any:
            return provider()

        return asyncio.run(ask())

    with pytest.raises(WrongEventLoopError, match="asked for from another event loop"):
        await asyncio.to_thread(in_a_new_loop, built.http)
    # Sync resources are not bound to a loop.
    assert await asyncio.to_thread(in_a_new_loop, built.settings) == "settings"
    assert await asyncio.to_thread(built.settings) == "settings"
    # A thread started by sync_to_async (a sync view under ASGI) can reach the loop...
    assert await sync_to_async(built.http)() == "http"
    # ...a plain thread cannot.
    with pytest.raises(WrongEventLoopError, match="a thread that cannot reach that loop"):
        await asyncio.to_thread(built.http)
    assert await lifecycle.stop(10) == []


# -- cancellation and time limits --------------------------------------------------------


async def test_a_sync_resource_finishing_after_cancellation_is_closed(journal: Journal) -> None:
    """A thread cannot be cancelled: what it opens after startup gave up is closed."""
    entered, gate = threading.Event(), threading.Event()

    def slow_sync() -> Iterator[str]:
        entered.set()
        assert gate.wait(timeout=10)
        journal.add("open slow")
        yield "slow"
        journal.add("close slow")

    built = container(slow=providers.Resource(slow_sync))
    events: list[tuple[str, str, str]] = []

    async def listener(event: ResourceEvent) -> None:
        events.append((event.name, event.action, event.outcome))

    lifecycle = ResourceLifecycle(built, listener)
    starting = asyncio.ensure_future(lifecycle.start())
    assert await asyncio.to_thread(entered.wait, 10)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    gate.set()
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open slow", "close slow"]
    assert_all_closed(built)
    # Its events say what really happened: it opened late, then closed.
    assert events == [("slow", "start", "ok"), ("slow", "stop", "ok")]


async def test_a_sync_resource_still_opening_when_stop_gives_up_is_logged(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread that outlives the shutdown time limit is named in the log."""
    entered, gate = threading.Event(), threading.Event()

    def stuck_sync() -> Iterator[str]:
        entered.set()
        assert gate.wait(timeout=10)
        yield "stuck"

    built = container(stuck=providers.Resource(stuck_sync))
    lifecycle = ResourceLifecycle(built)
    starting = asyncio.ensure_future(lifecycle.start())
    assert await asyncio.to_thread(entered.wait, 10)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert await lifecycle.stop(0.01) == []
    assert "Resource 'stuck' is still opening in its thread" in caplog.text
    gate.set()


# -- what the lifecycle knows about its resources ----------------------------------------


async def test_start_twice_is_refused(journal: Journal) -> None:
    built = container(http=providers.Resource(tracked, journal, "http"))
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    with pytest.raises(RuntimeError, match="already open"):
        await lifecycle.start()
    assert await lifecycle.stop(10) == []


async def test_start_order_and_dependencies_are_introspectable(journal: Journal) -> None:
    built = container()
    built.config = providers.Resource(tracked, journal, "config")
    built.db = providers.Resource(tracked, journal, "db", built.config)
    built.http = providers.Resource(tracked, journal, "http")
    lifecycle = ResourceLifecycle(built)
    assert lifecycle.names == ("config", "http", "db")
    assert lifecycle.dependencies("db") == ("config",)


async def test_an_async_context_manager_class_is_a_resource() -> None:
    """`providers.Resource(httpx.AsyncClient, ...)` opens in the loop and is closed."""
    import httpx  # noqa: PLC0415

    from tests.upstream import Upstream  # noqa: PLC0415

    async with Upstream() as upstream:
        built = container(http=providers.Resource(httpx.AsyncClient, base_url=upstream.url))
        lifecycle = ResourceLifecycle(built)
        assert await lifecycle.start() == []
        assert lifecycle.loop is asyncio.get_running_loop()
        assert lifecycle.is_open("http")
        client = built.http()
        assert (await client.get("/x")).json() == {"path": "/x"}
        assert await lifecycle.stop(10) == []
        assert client.is_closed
        assert not lifecycle.is_open("http")
        assert lifecycle.loop is None


async def named(name: str) -> AsyncIterator[str]:
    yield name


class Infrastructure(containers.DeclarativeContainer):
    db = providers.Resource(named, "db")


async def test_resources_are_named_by_their_path_on_the_container(journal: Journal) -> None:
    """Nested containers give dotted names; a resource with no attribute gets its function's."""
    built = container(
        infra=providers.Container(Infrastructure),
        service=providers.Factory(
            dict,
            a=providers.Resource(tracked, journal, "a"),
            b=providers.Resource(tracked, journal, "b"),
        ),
    )
    lifecycle = ResourceLifecycle(built)
    assert sorted(lifecycle.names) == ["<tracked>", "<tracked>#2", "infra.db"]


async def test_a_dependency_cycle_is_refused(journal: Journal) -> None:
    """Found when the lifecycle is made (which never raises); start() opens nothing."""
    built = container()
    built.a = providers.Resource(tracked, journal, "a")
    built.b = providers.Resource(tracked, journal, "b", built.a)
    built.a.add_args(built.b)
    lifecycle = ResourceLifecycle(built)
    assert lifecycle.cycles == {"a": ("a", "b", "a"), "b": ("b", "a", "b")}
    assert [str(failure) for failure in await lifecycle.start()] == [
        "resource 'a' depends on itself: a -> b -> a",
        "resource 'b' depends on itself: b -> a -> b",
    ]
    assert journal.entries == []


# -- found in review: each pins a fix ---------------------------------------------------


async def test_an_awaitable_dependency_is_awaited_before_the_resource_opens(
    journal: Journal,
) -> None:
    """A Coroutine provider as an argument gives the resource its result, not a coroutine."""

    async def fetch_token() -> str:
        return "s3cr3t"

    async def client(token: str) -> AsyncIterator[str]:
        journal.add(f"open with {token!r}")
        yield f"client({token})"

    built = container()
    built.token = providers.Coroutine(fetch_token)
    built.http = providers.Resource(client, token=built.token)
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    assert built.http() == "client(s3cr3t)"
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open with 's3cr3t'"]


class AsyncContextManager:
    """What redis.asyncio.from_url returns: an async context manager, from a plain call."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def __aenter__(self) -> str:
        self.journal.add("open from a factory")
        return "client"

    async def __aexit__(self, *exc_info: object) -> None:
        self.journal.add("close from a factory")


async def test_a_plain_factory_returning_an_async_context_manager_opens_on_the_loop(
    journal: Journal,
) -> None:
    def from_url(journal: Journal) -> AsyncContextManager:
        return AsyncContextManager(journal)

    built = container(cache=providers.Resource(from_url, journal))
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    assert built.cache() == "client"
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open from a factory", "close from a factory"]


async def test_a_close_that_ignores_cancellation_does_not_unbound_the_shutdown(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the time limit and a short grace, a stubborn close is left behind, reported."""
    never, still_never = asyncio.Event(), asyncio.Event()

    async def stubborn() -> AsyncIterator[str]:
        yield "stubborn"
        try:
            await never.wait()
        except asyncio.CancelledError:
            await still_never.wait()  # ignores the cancellation

    built = container(stubborn=providers.Resource(stubborn))
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    failures = await lifecycle.stop(0.05)
    assert [str(f) for f in failures] == [
        "resource 'stubborn' did not close within the time limit (0.05 s)"
    ]
    assert "ignored its cancellation" in caplog.text
    still_never.set()  # let the abandoned task end with the test
    await asyncio.sleep(0)
