"""The container's resources across the lifespan: order, concurrency, failures, timeouts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from dependency_injector import containers, providers, resources
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container._runtime import Runtime
from lifespan_container.exceptions import (
    ResourcesNotStartedError,
    ShutdownFailedError,
    StartupFailedError,
    WrongEventLoopError,
)
from lifespan_container.handler import LifespanHandler
from lifespan_container.lifecycle import ResourceEvent, ResourceLifecycle
from lifespan_container.signals import asgi_shutdown, asgi_startup
from tests.conftest import Connect
from tests.lifespan_driver import SHUTDOWN_COMPLETE, STARTUP_COMPLETE, Lifespan
from tests.resources import Journal, tracked, tracked_sync

pytestmark = pytest.mark.asyncio


def container(**members: providers.Provider[Any]) -> containers.DynamicContainer:
    built = containers.DynamicContainer()
    for name, provider in members.items():
        setattr(built, name, provider)
    return built


def handler_for(built: containers.Container) -> LifespanHandler:
    return LifespanHandler(Runtime(built))


def set_timeouts(settings: SettingsWrapper, startup: float = 10.0, shutdown: float = 10.0) -> None:
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": None,
        "STARTUP_TIMEOUT": startup,
        "SHUTDOWN_TIMEOUT": shutdown,
    }


def assert_all_closed(built: containers.Container) -> None:
    for provider in built.traverse(types=[providers.Resource]):
        assert not provider.initialized, provider


@pytest.fixture
def journal() -> Journal:
    return Journal()


async def test_resources_open_before_startup_receivers_and_close_after_shutdown_receivers(
    journal: Journal, connect: Connect
) -> None:
    """Receivers see open resources at startup, and still open ones at shutdown."""
    built = container(http=providers.Resource(tracked, journal, "http"))
    app = handler_for(built)
    connect(asgi_startup, lambda **kw: journal.add(f"startup sees {built.http()}"))
    connect(asgi_shutdown, lambda **kw: journal.add(f"shutdown sees {built.http()}"))
    lifespan = Lifespan(app)

    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert journal.entries == [
        "open http",
        "startup sees http",
        "shutdown sees http",
        "close http",
    ]
    assert_all_closed(built)


async def test_dependencies_open_first_and_close_last(journal: Journal) -> None:
    """A chain opens from the bottom up and closes from the top down."""
    built = container()
    built.config = providers.Resource(tracked, journal, "config")
    built.db = providers.Resource(tracked_sync, journal, "db", built.config)
    # Through a Factory: a dependency does not have to be direct.
    built.repo = providers.Factory(dict, db=built.db)
    built.service = providers.Resource(tracked, journal, "service", built.repo)
    lifespan = Lifespan(handler_for(built))

    assert await lifespan.startup() == STARTUP_COMPLETE
    assert built.service() == "service"
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert journal.opened() == ["config", "db", "service"]
    assert journal.closed() == ["service", "db", "config"]


async def test_independent_async_resources_open_concurrently(journal: Journal) -> None:
    """Two resources that each wait for the other to start can only open concurrently."""
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def first() -> AsyncIterator[str]:
        a_started.set()
        await b_started.wait()
        yield "a"

    async def second() -> AsyncIterator[str]:
        b_started.set()
        await a_started.wait()
        yield "b"

    built = container(a=providers.Resource(first), b=providers.Resource(second))
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()


async def test_sync_resources_open_concurrently_off_the_event_loop(journal: Journal) -> None:
    """Sync resources open in worker threads, side by side, while the loop keeps running."""
    barrier = threading.Barrier(2, timeout=10)
    loop_ran = threading.Event()

    def sync_resource(name: str) -> Iterator[str]:
        barrier.wait()  # both threads must be here at once
        # An async resource sets this while the threads wait: the loop is not blocked.
        assert loop_ran.wait(timeout=10)
        journal.add(f"open {name}")
        yield name

    async def async_resource() -> AsyncIterator[str]:
        loop_ran.set()
        yield "async"

    built = container(
        one=providers.Resource(sync_resource, "one"),
        two=providers.Resource(sync_resource, "two"),
        loop=providers.Resource(async_resource),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert sorted(journal.opened()) == ["one", "two"]
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()


class AsyncClientResource(resources.AsyncResource[str]):
    async def init(self, journal: Journal) -> str:
        journal.add("open async-class")
        return "async-class"

    async def shutdown(self, value: str | None) -> None:
        journal_of[0].add("close async-class")


class SyncClientResource(resources.Resource[str]):
    def init(self, journal: Journal) -> str:
        journal.add("open sync-class")
        return "sync-class"

    def shutdown(self, value: str | None) -> None:
        journal_of[0].add("close sync-class")


journal_of: list[Journal] = []


async def coroutine_resource(journal: Journal) -> str:
    journal.add("open coroutine")
    return "coroutine"


def plain_resource(journal: Journal) -> str:
    journal.add("open plain")
    return "plain"


async def test_every_kind_of_resource_opens_and_closes(journal: Journal) -> None:
    """Async and sync generators, Resource subclasses, coroutines and plain callables."""
    journal_of[:] = [journal]
    built = container(
        async_gen=providers.Resource(tracked, journal, "async-gen"),
        sync_gen=providers.Resource(tracked_sync, journal, "sync-gen"),
        async_class=providers.Resource(AsyncClientResource, journal),
        sync_class=providers.Resource(SyncClientResource, journal),
        coroutine=providers.Resource(coroutine_resource, journal),
        plain=providers.Resource(plain_resource, journal),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert [built.async_gen(), built.sync_gen(), built.async_class(), built.sync_class()] == [
        "async-gen",
        "sync-gen",
        "async-class",
        "sync-class",
    ]
    assert [built.coroutine(), built.plain()] == ["coroutine", "plain"]
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert sorted(journal.opened()) == sorted(
        ["async-gen", "sync-gen", "async-class", "sync-class", "coroutine", "plain"]
    )
    assert sorted(journal.closed()) == ["async-class", "async-gen", "sync-class", "sync-gen"]
    assert_all_closed(built)


# -- the failure matrix ------------------------------------------------------------------


async def test_resource_raising_at_open_closes_the_opened_ones(journal: Journal) -> None:
    """A failing resource: `startup.failed` names it; its opened siblings are closed."""
    built = container(
        http=providers.Resource(tracked, journal, "http"),
        db_pool=providers.Resource(
            tracked, journal, "db_pool", fail_open=ConnectionRefusedError("connection refused")
        ),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'db_pool' raised ConnectionRefusedError: connection refused."
        ),
    }
    with pytest.raises(StartupFailedError) as raised:
        await lifespan.finish()
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)
    assert journal.entries == ["open http", "close http"]
    assert_all_closed(built)


async def test_resource_hanging_at_open_times_out_and_rolls_back(
    journal: Journal, settings: SettingsWrapper
) -> None:
    """A resource that never opens: the startup timeout names it; the others close."""
    set_timeouts(settings, startup=0.05)
    never = asyncio.Event()
    built = container(
        http=providers.Resource(tracked, journal, "http"),
        slow=providers.Resource(tracked, journal, "slow", hold_open=never),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'slow' did not finish within "
            'LIFESPAN_CONTAINER["STARTUP_TIMEOUT"] (0.05 s).'
        ),
    }
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert journal.entries == ["open http", "close http"]
    assert_all_closed(built)


async def test_resource_whose_dependency_failed_never_opens(journal: Journal) -> None:
    """A resource is not opened when a resource it depends on failed."""
    built = container()
    built.config = providers.Resource(tracked, journal, "config")
    built.db = providers.Resource(tracked, journal, "db", built.config, fail_open=OSError("down"))
    built.repo = providers.Resource(tracked, journal, "repo", built.db)
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == {
        "type": "lifespan.startup.failed",
        "message": "Startup failed: resource 'db' raised OSError: down.",
    }
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert journal.entries == ["open config", "close config"]
    assert_all_closed(built)


async def test_two_resources_failing_at_once_are_both_reported(journal: Journal) -> None:
    """Failures that happen together are reported together."""
    built = container(
        first=providers.Resource(tracked, journal, "first", fail_open=ValueError("one")),
        second=providers.Resource(tracked, journal, "second", fail_open=KeyError("two")),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'first' raised ValueError: one; "
            "resource 'second' raised KeyError: 'two'."
        ),
    }
    with pytest.raises(StartupFailedError) as raised:
        await lifespan.finish()
    assert [failure.step for failure in raised.value.failures] == [
        "resource 'first'",
        "resource 'second'",
    ]


async def test_failing_startup_receiver_closes_every_resource(
    journal: Journal, connect: Connect
) -> None:
    """A startup receiver failing after the resources opened closes them all again."""
    built = container()
    built.db = providers.Resource(tracked, journal, "db")
    built.cache = providers.Resource(tracked_sync, journal, "cache", built.db)

    async def warm_cache(**kwargs: Any) -> None:
        raise RuntimeError("cache warm-up failed")

    connect(asgi_startup, warm_cache)
    lifespan = Lifespan(handler_for(built))
    answer = await lifespan.startup()
    assert answer["type"] == "lifespan.startup.failed"
    assert answer["message"].endswith("warm_cache' raised RuntimeError: cache warm-up failed.")
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert journal.opened() == ["db", "cache"]
    assert journal.closed() == ["cache", "db"]
    assert_all_closed(built)


async def test_resource_raising_at_close_does_not_stop_the_others(journal: Journal) -> None:
    """A failing close is reported; the resources it depends on still close."""
    built = container()
    built.db = providers.Resource(tracked, journal, "db")
    built.repo = providers.Resource(
        tracked, journal, "repo", built.db, fail_close=RuntimeError("close failed")
    )
    built.other = providers.Resource(tracked_sync, journal, "other", fail_close=OSError("gone"))
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == {
        "type": "lifespan.shutdown.failed",
        "message": (
            "Shutdown finished with errors: resource 'repo' raised RuntimeError: close failed; "
            "resource 'other' raised OSError: gone."
        ),
    }
    with pytest.raises(ShutdownFailedError) as raised:
        await lifespan.finish()
    assert len(raised.value.failures) == 2
    assert sorted(journal.closed()) == ["db", "other", "repo"]
    assert journal.closed().index("repo") < journal.closed().index("db")
    assert_all_closed(built)


async def test_resource_hanging_at_close_is_bounded_and_the_others_close(
    journal: Journal, settings: SettingsWrapper
) -> None:
    """A close that never finishes is cut off by the shutdown timeout and named."""
    set_timeouts(settings, shutdown=0.05)
    never = asyncio.Event()
    built = container(
        stuck=providers.Resource(tracked, journal, "stuck", hold_close=never),
        http=providers.Resource(tracked, journal, "http"),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == {
        "type": "lifespan.shutdown.failed",
        "message": (
            "Shutdown finished with errors: resource 'stuck' did not close within "
            'LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (0.05 s).'
        ),
    }
    with pytest.raises(ShutdownFailedError):
        await lifespan.finish()
    assert sorted(journal.closed()) == ["http", "stuck"]


async def test_overridden_resource_is_not_opened(journal: Journal) -> None:
    """A resource overridden before startup is never opened; the override is served."""
    built = container(
        db=providers.Resource(tracked, journal, "db", fail_open=OSError("unreachable")),
    )
    app = handler_for(built)
    with built.db.override(providers.Object("fake-db")):
        lifespan = Lifespan(app)
        assert await lifespan.startup() == STARTUP_COMPLETE
        assert built.db() == "fake-db"
        assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
        await lifespan.finish()
    assert journal.entries == []


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

    with pytest.raises(WrongEventLoopError, match="sync test Client"):
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


async def test_cancelled_startup_closes_what_it_opened(journal: Journal) -> None:
    """If the server cancels the lifespan during startup, opened resources are closed."""
    never = asyncio.Event()
    built = container(
        http=providers.Resource(tracked, journal, "http"),
        slow=providers.Resource(tracked, journal, "slow", hold_open=never),
    )
    lifespan = Lifespan(handler_for(built))
    await lifespan.communicator.send_input({"type": "lifespan.startup"})
    for _ in range(100):  # bounded: until the fast resource has opened
        if journal.entries:
            break
        await asyncio.sleep(0)
    assert journal.entries == ["open http"]
    lifespan.communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lifespan.communicator.future
    assert journal.entries == ["open http", "close http"]
    assert_all_closed(built)


async def test_failed_rollback_is_reported_with_the_startup_failure(journal: Journal) -> None:
    """When closing the opened resources fails too, `startup.failed` says so."""
    built = container(
        leaky=providers.Resource(tracked, journal, "leaky", fail_close=OSError("socket gone")),
        broken=providers.Resource(tracked, journal, "broken", fail_open=ValueError("no")),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'broken' raised ValueError: no. Closing the opened "
            "resources also failed: resource 'leaky' raised OSError: socket gone."
        ),
    }
    with pytest.raises(StartupFailedError):
        await lifespan.finish()


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


async def test_handler_drives_the_process_container_by_default() -> None:
    """Without an explicit runtime, the handler uses the one the app loaded."""
    from lifespan_container._runtime import get_runtime  # noqa: PLC0415

    assert LifespanHandler().runtime is get_runtime()


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


async def test_rollback_closes_what_opened_before_waiting_for_a_stuck_thread(
    journal: Journal, settings: SettingsWrapper
) -> None:
    """A sync resource stuck in its thread does not eat the time of the opened ones."""
    set_timeouts(settings, startup=0.05, shutdown=0.5)
    gate = threading.Event()

    def stuck() -> Iterator[str]:
        assert gate.wait(timeout=10)
        yield "late"

    never = asyncio.Event()
    built = container(
        pool=providers.Resource(tracked, journal, "pool"),
        stuck=providers.Resource(stuck),
        slow=providers.Resource(tracked, journal, "slow", hold_open=never),
    )
    lifespan = Lifespan(handler_for(built))
    try:
        answer = await lifespan.startup()
        assert answer["type"] == "lifespan.startup.failed"
        with pytest.raises(StartupFailedError):
            await lifespan.finish()
        assert journal.entries == ["open pool", "close pool"]
    finally:
        gate.set()


async def test_a_hung_shutdown_receiver_leaves_the_resources_time_to_close(
    journal: Journal, connect: Connect, settings: SettingsWrapper
) -> None:
    set_timeouts(settings, shutdown=0.1)
    never = asyncio.Event()

    async def drain(**kwargs: Any) -> None:
        await never.wait()

    connect(asgi_shutdown, drain)
    built = container(pool=providers.Resource(tracked, journal, "pool"))
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    answer = await lifespan.shutdown()
    assert answer["type"] == "lifespan.shutdown.failed"
    assert "drain' did not finish within 0.05 s" in answer["message"]
    with pytest.raises(ShutdownFailedError):
        await lifespan.finish()
    assert journal.entries == ["open pool", "close pool"]
    assert_all_closed(built)


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


async def test_a_second_lifespan_on_the_same_container_is_refused_without_harm(
    journal: Journal,
) -> None:
    """Nesting lifespans is an error for the inner one; the outer keeps its resources."""
    built = container(http=providers.Resource(tracked, journal, "http"))
    app = handler_for(built)
    outer = Lifespan(app)
    assert await outer.startup() == STARTUP_COMPLETE
    inner = Lifespan(app)
    answer = await inner.startup()
    assert answer["type"] == "lifespan.startup.failed"
    assert "already open, for another lifespan" in answer["message"]
    with pytest.raises(StartupFailedError):
        await inner.finish()
    assert built.http() == "http"  # still open
    assert await outer.shutdown() == SHUTDOWN_COMPLETE
    await outer.finish()
    assert journal.entries == ["open http", "close http"]


async def test_a_cancelled_shutdown_still_closes_the_resources(
    journal: Journal, connect: Connect
) -> None:
    """The server cancels the lifespan while a shutdown receiver runs: resources close."""
    never = asyncio.Event()
    receiving = asyncio.Event()

    async def stuck_receiver(**kwargs: Any) -> None:
        receiving.set()
        await never.wait()

    connect(asgi_shutdown, stuck_receiver)
    built = container(http=providers.Resource(tracked, journal, "http"))
    runtime = Runtime(built)
    lifespan = Lifespan(LifespanHandler(runtime))
    assert await lifespan.startup() == STARTUP_COMPLETE
    await lifespan.communicator.send_input({"type": "lifespan.shutdown"})
    await asyncio.wait_for(receiving.wait(), 10)
    lifespan.communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lifespan.communicator.future
    assert journal.closed() == ["http"]
    assert runtime.phase == "stopped"
    assert runtime.lifecycle is not None
    assert not runtime.lifecycle.in_use


async def test_a_slow_resource_signal_receiver_is_named_by_its_resource(
    journal: Journal, connect: Connect, settings: SettingsWrapper
) -> None:
    from lifespan_container.signals import resource_started  # noqa: PLC0415

    set_timeouts(settings, startup=0.05)
    never = asyncio.Event()

    async def slow_metrics(**kwargs: Any) -> None:
        await never.wait()

    connect(resource_started, slow_metrics)
    built = container(http=providers.Resource(tracked, journal, "http"))
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'http' did not finish within "
            'LIFESPAN_CONTAINER["STARTUP_TIMEOUT"] (0.05 s).'
        ),
    }
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert journal.closed() == ["http"]
