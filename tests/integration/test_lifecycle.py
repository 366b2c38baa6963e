"""The container's resources across the handler's lifespan: order, concurrency, failures,
timeouts, with the signals and the settings (the lifecycle alone: tests/engine)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from dependency_injector import containers, providers, resources
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.exceptions import (
    ResourcesNotStartedError,
    ShutdownFailedError,
    StartupFailedError,
    WrongEventLoopError,
)
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.signals import asgi_shutdown, asgi_startup
from tests.clock import LoopClock, until
from tests.conftest import Connect
from tests.lifespan_driver import (
    SHUTDOWN,
    SHUTDOWN_COMPLETE,
    STARTUP,
    STARTUP_COMPLETE,
    WAIT,
    Lifespan,
)
from tests.resources import Journal, assert_all_closed, container, tracked, tracked_sync

pytestmark = pytest.mark.asyncio


def handler_for(built: containers.Container) -> LifespanHandler:
    return LifespanHandler(Runtime(built))


def set_timeouts(settings: SettingsWrapper, startup: float = 10.0, shutdown: float = 10.0) -> None:
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": None,
        "STARTUP_TIMEOUT": startup,
        "SHUTDOWN_TIMEOUT": shutdown,
    }


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
    journal: Journal, settings: SettingsWrapper, clock: LoopClock
) -> None:
    """A resource that never opens: the startup timeout names it; the others close."""
    set_timeouts(settings, startup=10)
    never = asyncio.Event()
    built = container(
        http=providers.Resource(tracked, journal, "http"),
        slow=providers.Resource(tracked, journal, "slow", hold_open=never),
    )
    lifespan = Lifespan(handler_for(built))
    await lifespan.send(STARTUP)
    await until(lambda: journal.entries == ["open http"], "http opened")
    clock.advance(10)
    assert await lifespan.answer() == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'slow' did not finish within "
            'LIFESPAN_CONTAINER["STARTUP_TIMEOUT"] (10 s).'
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
    journal: Journal, settings: SettingsWrapper, clock: LoopClock
) -> None:
    """A close that never finishes is cut off by the shutdown timeout and named."""
    set_timeouts(settings, shutdown=10)
    never = asyncio.Event()
    built = container(
        stuck=providers.Resource(tracked, journal, "stuck", hold_close=never),
        http=providers.Resource(tracked, journal, "http"),
    )
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    await lifespan.send(SHUTDOWN)
    # "close stuck" is written before it starts waiting on `never`; http has closed.
    await until(lambda: sorted(journal.closed()) == ["http", "stuck"], "both closes began")
    clock.advance(10)
    assert await lifespan.answer() == {
        "type": "lifespan.shutdown.failed",
        "message": (
            "Shutdown finished with errors: resource 'stuck' did not close within "
            'LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (10 s).'
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


# -- cancellation, rollback and the process's runtime -------------------------------------


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


async def test_handler_drives_the_process_container_by_default() -> None:
    """Without an explicit runtime, the handler uses the one the app loaded."""
    from lifespan_container.runtime import get_runtime  # noqa: PLC0415

    assert LifespanHandler().runtime is get_runtime()


# -- found in review: each pins a fix ---------------------------------------------------


async def test_rollback_closes_what_opened_before_waiting_for_a_stuck_thread(
    journal: Journal, settings: SettingsWrapper, clock: LoopClock
) -> None:
    """A sync resource stuck in its thread does not eat the time of the opened ones.

    The pool closes while the rollback's whole time limit is still ahead: only then
    does the test let that limit pass, ending the wait for the stuck thread.
    """
    set_timeouts(settings, startup=10, shutdown=10)
    entered, gate = threading.Event(), threading.Event()

    def stuck() -> Iterator[str]:
        entered.set()
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
        await lifespan.send(STARTUP)
        await until(
            lambda: entered.is_set() and journal.entries == ["open pool"], "pool open, stuck"
        )
        clock.advance(10)  # the startup limit: the rollback starts
        await until(lambda: "close pool" in journal.entries, "the pool closed")
        clock.advance(10)  # the rollback's limit: it stops waiting for the thread
        answer = await lifespan.answer()
        assert answer["type"] == "lifespan.startup.failed"
        with pytest.raises(StartupFailedError):
            await lifespan.finish()
        assert journal.entries == ["open pool", "close pool"]
    finally:
        gate.set()


async def test_a_hung_shutdown_receiver_leaves_the_resources_time_to_close(
    journal: Journal, connect: Connect, settings: SettingsWrapper, clock: LoopClock
) -> None:
    """Cut off at half the limit, the receiver leaves the other half to the resources."""
    set_timeouts(settings, shutdown=20)
    never, draining = asyncio.Event(), asyncio.Event()

    async def drain(**kwargs: Any) -> None:
        draining.set()
        await never.wait()

    connect(asgi_shutdown, drain)
    built = container(pool=providers.Resource(tracked, journal, "pool"))
    lifespan = Lifespan(handler_for(built))
    assert await lifespan.startup() == STARTUP_COMPLETE
    await lifespan.send(SHUTDOWN)
    await asyncio.wait_for(draining.wait(), WAIT)
    clock.advance(10)  # the receivers' half; the pool then has the other 10 s
    answer = await lifespan.answer()
    assert answer["type"] == "lifespan.shutdown.failed"
    assert "drain' did not finish within 10 s" in answer["message"]
    with pytest.raises(ShutdownFailedError):
        await lifespan.finish()
    assert journal.entries == ["open pool", "close pool"]
    assert_all_closed(built)


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
    journal: Journal, connect: Connect, settings: SettingsWrapper, clock: LoopClock
) -> None:
    from lifespan_container.signals import resource_started  # noqa: PLC0415

    set_timeouts(settings, startup=10)
    never, receiving = asyncio.Event(), asyncio.Event()

    async def slow_metrics(**kwargs: Any) -> None:
        receiving.set()
        await never.wait()

    connect(resource_started, slow_metrics)
    built = container(http=providers.Resource(tracked, journal, "http"))
    lifespan = Lifespan(handler_for(built))
    await lifespan.send(STARTUP)
    await asyncio.wait_for(receiving.wait(), WAIT)  # http opened; its signal hangs
    clock.advance(10)
    assert await lifespan.answer() == {
        "type": "lifespan.startup.failed",
        "message": (
            "Startup failed: resource 'http' did not finish within "
            'LIFESPAN_CONTAINER["STARTUP_TIMEOUT"] (10 s).'
        ),
    }
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert journal.closed() == ["http"]


async def test_the_projects_lifecycle_says_what_to_do_about_a_wrong_loop(journal: Journal) -> None:
    """The Django layer adds its advice to the engine's errors: test clients, servers."""
    built = container(http=providers.Resource(tracked, journal, "http"))
    runtime = Runtime(built)
    assert runtime.lifecycle is not None
    assert await runtime.lifecycle.start() == []

    def in_a_new_loop() -> Any:
        async def ask() -> Any:
            return built.http()

        return asyncio.run(ask())

    try:
        with pytest.raises(WrongEventLoopError, match="Django's sync test Client"):
            await asyncio.to_thread(in_a_new_loop)
        with pytest.raises(WrongEventLoopError, match=r"asgiref\.sync\.async_to_sync"):
            await asyncio.to_thread(built.http)
    finally:
        assert await runtime.lifecycle.stop(10) == []
    with pytest.raises(ResourcesNotStartedError, match=r"python manage\.py runasgi"):
        built.http()
