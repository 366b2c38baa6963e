"""ResourceLifecycle when all goes well: order, concurrency, threads, overrides, events."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from dependency_injector import providers

from lifespan_container.engine.events import ResourceEvent
from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.steps import Failure
from lifespan_container.exceptions import ResourcesNotStartedError
from tests.engine.support import (
    Events,
    Journal,
    build,
    is_in_use,
    is_started,
    tracked,
    tracked_sync,
)

pytestmark = pytest.mark.asyncio

START = Limit(10, "STARTUP")
"""For startups that must finish: a bound that only a hung test reaches."""


# -- order and where things run -------------------------------------------------------------


async def test_dependencies_open_first_and_close_last() -> None:
    """A chain, through a Factory, opens from the bottom up and closes from the top down."""
    journal = Journal()
    built = build()
    built.service = providers.Resource(tracked, journal, "service")
    built.config = providers.Resource(tracked, journal, "config")
    built.db = providers.Resource(tracked_sync, journal, "db", built.config)
    built.repo = providers.Factory(dict, db=built.db)
    built.service.add_args(built.repo)
    lifecycle = ResourceLifecycle(built)

    assert lifecycle.names == ("config", "db", "service")
    assert lifecycle.dependencies("service") == ("config", "db")
    assert await lifecycle.start(timeout=START) == []
    assert is_started(lifecycle)
    assert built.repo() == {"db": "db"}
    assert await lifecycle.stop(10) == []
    assert journal.opened() == ["config", "db", "service"]
    assert journal.closed() == ["service", "db", "config"]
    assert not is_started(lifecycle)
    assert not is_in_use(lifecycle)


async def test_independent_async_resources_open_and_close_concurrently() -> None:
    """Two resources that each wait for the other to start can only open (and close) together."""
    started = {"a": asyncio.Event(), "b": asyncio.Event()}
    closing = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def meet(me: str, other: str) -> AsyncIterator[str]:
        started[me].set()
        await started[other].wait()
        yield me
        closing[me].set()
        await closing[other].wait()

    built = build(a=providers.Resource(meet, "a", "b"), b=providers.Resource(meet, "b", "a"))
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start(timeout=START) == []
    assert await lifecycle.stop(10) == []


async def test_independent_sync_resources_open_concurrently_in_threads() -> None:
    """Two sync resources meeting at a barrier can only open in two threads at once."""
    barrier = threading.Barrier(2, timeout=10)
    threads: set[str] = set()

    def meet() -> Iterator[None]:
        threads.add(threading.current_thread().name)
        barrier.wait()
        yield

    built = build(a=providers.Resource(meet), b=providers.Resource(meet))
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start(timeout=START) == []
    assert await lifecycle.stop(10) == []
    assert len(threads) == 2
    assert all(name.startswith("lifespan-resource") for name in threads)


async def test_sync_resources_open_and_close_in_threads_and_async_ones_on_the_loop() -> None:
    """Generators, Resource subclasses and context managers use threads; async ones the loop.

    A sync resource may use an async (loop-bound) one while it opens in its thread.
    """
    loop_thread = threading.get_ident()
    where: dict[str, int] = {}

    async def on_loop() -> AsyncIterator[str]:
        where["async open"] = threading.get_ident()
        yield "loop value"
        where["async close"] = threading.get_ident()

    def in_thread(value: str) -> Iterator[str]:
        where["sync open"] = threading.get_ident()
        yield f"thread got {value}"
        where["sync close"] = threading.get_ident()

    class Manager:
        def __enter__(self) -> str:
            where["manager open"] = threading.get_ident()
            return "managed"

        def __exit__(self, *exc: object) -> None:
            where["manager close"] = threading.get_ident()

    built = build(a=providers.Resource(on_loop), m=providers.Resource(Manager))
    built.s = providers.Resource(in_thread, built.a)
    lifecycle = ResourceLifecycle(built)
    assert [lifecycle.opens_in_thread(name) for name in ("a", "m", "s")] == [False, True, True]
    assert await lifecycle.start(timeout=START) == []
    assert built.s() == "thread got loop value"
    assert await lifecycle.stop(10) == []
    assert where["async open"] == where["async close"] == loop_thread
    for key in ("sync open", "sync close", "manager open", "manager close"):
        assert where[key] != loop_thread, key


async def test_an_overridden_resource_is_not_opened_and_its_dependents_get_the_override(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A test's override wins: the resource is never opened, and what uses it gets the override."""
    journal = Journal()
    built = build(db=providers.Resource(tracked, journal, "db"))

    async def service(db: str) -> AsyncIterator[str]:
        journal.add(f"open service with {db}")
        yield "service"

    built.service = providers.Resource(service, built.db)
    built.uses = providers.Factory(dict, db=built.db)
    lifecycle = ResourceLifecycle(built)
    with built.db.override(providers.Object("fake db")):
        assert lifecycle.overridden("db")
        with caplog.at_level(logging.INFO, logger="lifespan_container.resources"):
            assert await lifecycle.start(timeout=START) == []
        assert journal.entries == ["open service with fake db"]
        assert not lifecycle.is_open("db")
        assert lifecycle.current("db") == "fake db"
        assert built.uses() == {"db": "fake db"}
        assert await lifecycle.stop(10) == []
    assert not lifecycle.overridden("db")
    assert "Resource 'db' is overridden: not opened." in caplog.text


async def test_start_twice_is_refused_and_a_stopped_lifecycle_starts_again() -> None:
    """start() while open raises; after stop() the same lifecycle opens everything again."""
    journal = Journal()
    lifecycle = ResourceLifecycle(build(db=providers.Resource(tracked, journal, "db")))
    assert await lifecycle.start(timeout=START) == []
    with pytest.raises(RuntimeError, match=r"already open; stop\(\) them before start\(\)"):
        await lifecycle.start(timeout=START)
    assert await lifecycle.stop(10) == []
    assert await lifecycle.start(timeout=START) == []
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open db", "close db"] * 2


async def test_a_resource_depending_on_itself_is_refused_before_anything_opens() -> None:
    """A cycle is a failure of each resource in it; no resource is opened."""
    journal = Journal()
    loop_back: providers.Factory[dict[str, Any]] = providers.Factory(dict)
    built = build(
        a=providers.Resource(tracked, journal, "a", loop_back),
        b=providers.Resource(tracked, journal, "b"),
    )
    loop_back.add_kwargs(x=built.a)
    lifecycle = ResourceLifecycle(built)
    assert lifecycle.cycles == {"a": ("a", "argument 3", "a")}
    failures = await lifecycle.start(timeout=START)
    assert failures == [Failure("resource 'a'", reason="depends on itself: a -> argument 3 -> a")]
    assert journal.entries == []
    assert not is_in_use(lifecycle)


async def test_each_open_and_close_is_an_event_and_a_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The listener gets a ResourceEvent per step; the log record carries the same fields."""
    journal, events = Journal(), Events()
    lifecycle = ResourceLifecycle(build(db=providers.Resource(tracked, journal, "db")), events)
    assert lifecycle.listener is events
    with caplog.at_level(logging.INFO, logger="lifespan_container.resources"):
        assert await lifecycle.start(timeout=START) == []
        assert await lifecycle.stop(10) == []
    assert events.summary() == [("db", "start", "ok"), ("db", "stop", "ok")]
    assert all(event.duration >= 0 and event.error is None for event in events.seen)
    records = [r for r in caplog.records if r.name == "lifespan_container.resources"]
    assert [r.getMessage().split(" in ")[0] for r in records] == [
        "Opened resource 'db'",
        "Closed resource 'db'",
    ]
    assert [(r.resource, r.action, r.outcome) for r in records] == events.summary()  # type: ignore[attr-defined]


async def test_a_listener_that_raises_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing listener neither fails the start nor the stop."""
    journal = Journal()

    async def listener(event: ResourceEvent) -> None:
        raise RuntimeError("listener broke")

    lifecycle = ResourceLifecycle(build(db=providers.Resource(tracked, journal, "db")), listener)
    with caplog.at_level(logging.ERROR, logger="lifespan_container.resources"):
        assert await lifecycle.start(timeout=START) == []
        assert await lifecycle.stop(10) == []
    assert journal.entries == ["open db", "close db"]
    assert caplog.text.count("A listener of resource events failed") == 2
    assert "RuntimeError: listener broke" in caplog.text


async def test_current_gives_the_override_or_the_open_value_and_never_opens() -> None:
    """current() never opens: not open before start, and an unopened overriding resource
    is reported as not open rather than opened."""
    journal = Journal()
    built = build(db=providers.Resource(tracked, journal, "db"))
    lifecycle = ResourceLifecycle(built)
    with pytest.raises(ResourcesNotStartedError, match="Resource 'db' is not open"):
        lifecycle.current("db")
    with (
        built.db.override(providers.Resource(tracked, journal, "replacement")),
        pytest.raises(ResourcesNotStartedError, match="overridden by a resource that is not open"),
    ):
        lifecycle.current("db")
    assert await lifecycle.start(timeout=START) == []
    assert lifecycle.current("db") == "db"
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open db", "close db"]
