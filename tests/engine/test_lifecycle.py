"""ResourceLifecycle's failure matrix: raise, hang, cancel, failed dependency, bad closes."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from dependency_injector import providers

from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.steps import Failure
from tests.clock import LoopClock, until
from tests.engine.support import (
    Events,
    Journal,
    build,
    hanging,
    is_in_use,
    is_started,
    loop_of,
    throw,
    tracked,
    tracked_sync,
    wait_in_thread,
)

pytestmark = pytest.mark.asyncio

START = Limit(10, "STARTUP")
"""For startups that must finish: a bound that only a hung test reaches."""

LIMIT = 100
"""A time limit under test: real time never reaches it; the test moves the clock past it."""


async def failing(error: BaseException, *after: asyncio.Event) -> AsyncIterator[str]:
    for event in after:
        await event.wait()
    throw(error)
    yield "never"  # pragma: no cover


def failing_sync(error: BaseException, go: threading.Event) -> Iterator[str]:
    wait_in_thread(go)
    throw(error)
    yield "never"  # pragma: no cover


# -- opening fails: raises, hangs, is cancelled, its dependency fails ---------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_an_open_that_raises_fails_the_start_and_cancels_the_others(kind: str) -> None:
    """The error is the one failure; a resource still opening is cancelled; an open one
    stays open, handed out, until stop() closes it."""
    journal, events = Journal(), Events()
    started, cancelled = asyncio.Event(), asyncio.Event()
    go = threading.Event()
    error = ValueError("cannot connect")
    good_open = events.when("good", "start", "ok")
    bad = (
        providers.Resource(failing, error, started, good_open)
        if kind == "async"
        else providers.Resource(failing_sync, error, go)
    )
    built = build(
        good=providers.Resource(tracked, journal, "good"),
        slow=providers.Resource(hanging, started, cancelled),
        bad=bad,
    )
    lifecycle = ResourceLifecycle(built, events)

    async def release_the_thread() -> None:
        await started.wait()
        await good_open.wait()
        go.set()

    releasing = asyncio.create_task(release_the_thread())
    failures = await lifecycle.start(timeout=START)
    await releasing
    assert failures == [Failure("resource 'bad'", error)]
    assert cancelled.is_set()
    assert not is_started(lifecycle)
    assert is_in_use(lifecycle)
    assert lifecycle.is_open("good")
    assert not lifecycle.is_open("slow")
    assert built.good() == "good"
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open good", "close good"]
    assert events.summary() == [
        ("good", "start", "ok"),
        ("bad", "start", "failed"),
        ("slow", "start", "cancelled"),
        ("good", "stop", "ok"),
    ]
    assert events.seen[1].error is error
    assert not is_in_use(lifecycle)


@pytest.mark.parametrize(
    ("limit", "named"),
    [(Limit(LIMIT, "STARTUP_TIMEOUT"), "STARTUP_TIMEOUT"), (LIMIT, f"the time limit ({LIMIT} s)")],
)
async def test_an_open_that_hangs_is_cut_by_the_start_limit(
    limit: Limit | float, named: str, clock: LoopClock
) -> None:
    """A resource that never opens is cancelled at the limit and named with the limit.

    The good one has opened, and the slow one is opening, before the test lets the
    limit pass.
    """
    journal, events = Journal(), Events()
    started, cancelled = asyncio.Event(), asyncio.Event()
    built = build(
        good=providers.Resource(tracked, journal, "good"),
        slow=providers.Resource(hanging, started, cancelled),
    )
    lifecycle = ResourceLifecycle(built, events)
    starting = asyncio.ensure_future(lifecycle.start(timeout=limit))
    await asyncio.gather(started.wait(), events.when("good", "start", "ok").wait())
    clock.advance(LIMIT + 50)
    await until(starting.done, "the start cut off by its limit")
    failures = starting.result()
    assert failures == [Failure("resource 'slow'", reason=f"did not finish within {named}")]
    assert cancelled.is_set()
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open good", "close good"]


async def test_a_sync_open_still_in_its_thread_at_the_limit_is_closed_when_it_opens() -> None:
    """A thread cannot be stopped: stop() waits for it (within its limit) and closes it."""
    journal, events = Journal(), Events()
    release = threading.Event()

    def slow() -> Iterator[str]:
        wait_in_thread(release)
        journal.add("open slow")
        yield "slow"
        journal.add("close slow")

    lifecycle = ResourceLifecycle(build(slow=providers.Resource(slow)), events)
    failures = await lifecycle.start(timeout=Limit(0.2, "STARTUP"))
    assert failures == [Failure("resource 'slow'", reason="did not finish within STARTUP")]
    assert is_in_use(lifecycle)
    release.set()
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open slow", "close slow"]
    assert events.summary() == [("slow", "start", "ok"), ("slow", "stop", "ok")]
    assert not is_in_use(lifecycle)


async def test_a_sync_open_still_in_its_thread_after_the_stop_limit_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """stop() stays bounded: a thread still opening at its limit is logged as not closable."""
    release, ended = threading.Event(), threading.Event()

    def stuck() -> Iterator[str]:
        try:
            wait_in_thread(release)
        finally:
            ended.set()
        yield "stuck"

    lifecycle = ResourceLifecycle(build(stuck=providers.Resource(stuck)))
    assert await lifecycle.start(timeout=0.1) == [
        Failure("resource 'stuck'", reason="did not finish within the time limit (0.1 s)")
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="lifespan_container.resources"):
            assert await lifecycle.stop(0.1) == []
        assert "Resource 'stuck' is still opening in its thread; it cannot be closed now." in (
            caplog.text
        )
        assert not is_in_use(lifecycle)
    finally:
        release.set()
        assert await asyncio.to_thread(ended.wait, 10)


async def test_startup_cancelled_from_outside_closes_what_it_opened() -> None:
    """Cancelling start(): async openings are cancelled, stop() closes what was open,
    and a sync resource still opening in its thread is closed once its thread finishes."""
    journal, events = Journal(), Events()
    started, cancelled = asyncio.Event(), asyncio.Event()
    release, in_thread = threading.Event(), threading.Event()

    async def opened() -> AsyncIterator[str]:
        journal.add("open opened")
        yield "opened"
        journal.add("close opened")
        release.set()  # the thread ends only after stop() began

    def sync_slow() -> Iterator[str]:
        in_thread.set()
        wait_in_thread(release)
        journal.add("open sync")
        yield "sync"
        journal.add("close sync")

    built = build(
        opened=providers.Resource(opened),
        slow=providers.Resource(hanging, started, cancelled),
        sync=providers.Resource(sync_slow),
    )
    lifecycle = ResourceLifecycle(built, events)
    starting = asyncio.create_task(lifecycle.start(timeout=START))
    await events.when("opened", "start", "ok").wait()
    await started.wait()
    assert await asyncio.to_thread(in_thread.wait, 10)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert cancelled.is_set()
    assert is_in_use(lifecycle)
    assert not is_started(lifecycle)
    assert loop_of(lifecycle) is asyncio.get_running_loop()

    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open opened", "close opened", "open sync", "close sync"]
    assert ("slow", "start", "cancelled") in events.summary()
    assert not is_in_use(lifecycle)
    assert loop_of(lifecycle) is None


async def test_a_resource_whose_dependency_fails_is_never_opened() -> None:
    """The dependent is not opened; an independent one opening is cancelled, an open one closed."""
    journal, events = Journal(), Events()
    started, cancelled = asyncio.Event(), asyncio.Event()
    error = OSError("no database")
    built = build(
        independent=providers.Resource(tracked, journal, "independent"),
        slow=providers.Resource(hanging, started, cancelled),
        base=providers.Resource(failing, error, started, events.when("independent", "start", "ok")),
    )
    built.dependent = providers.Resource(tracked_sync, journal, "dependent", built.base)
    built.further = providers.Resource(tracked, journal, "further", built.dependent)
    lifecycle = ResourceLifecycle(built, events)

    assert await lifecycle.start(timeout=START) == [Failure("resource 'base'", error)]
    assert cancelled.is_set()
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open independent", "close independent"]
    assert {event.name for event in events.seen} == {"independent", "slow", "base"}


# -- closing fails: raises, hangs ------------------------------------------------------------


async def test_closes_that_raise_are_all_returned_and_the_others_still_close_in_order() -> None:
    """Every failing close is a failure (reverse start order); the chain still closes top-down."""
    journal, events = Journal(), Events()
    service_error, cache_error = RuntimeError("service close"), OSError("cache close")

    async def service(db: str) -> AsyncIterator[str]:
        yield "service"
        journal.add("close service")
        raise service_error

    def cache() -> Iterator[str]:
        yield "cache"
        journal.add("close cache")
        raise cache_error

    built = build(config=providers.Resource(tracked, journal, "config"))
    built.db = providers.Resource(tracked_sync, journal, "db", built.config)
    built.service = providers.Resource(service, built.db)
    built.cache = providers.Resource(cache)
    lifecycle = ResourceLifecycle(built, events)
    assert lifecycle.names == ("config", "cache", "db", "service")
    assert await lifecycle.start(timeout=START) == []

    failures = await lifecycle.stop(10)
    assert failures == [
        Failure("resource 'service'", service_error),
        Failure("resource 'cache'", cache_error),
    ]
    chain = [name for name in journal.closed() if name != "cache"]
    assert chain == ["service", "db", "config"]
    assert "cache" in journal.closed()
    stops = {event.name: event.outcome for event in events.seen if event.action == "stop"}
    assert stops == {"service": "failed", "cache": "failed", "db": "ok", "config": "ok"}
    assert not is_in_use(lifecycle)


async def test_a_close_that_hangs_is_bounded_and_what_waits_behind_it_is_named(
    clock: LoopClock,
) -> None:
    """The hung close is cut at the limit; its dependencies were not closed "before its turn".

    Independent resources still close; what was not closed stays open for another stop().
    The independent one has closed, and the hung close is running, before the test lets
    the limit pass.
    """
    journal, events, closing_db = Journal(), Events(), asyncio.Event()

    async def db(config: str) -> AsyncIterator[str]:
        yield "db"
        closing_db.set()
        await asyncio.Event().wait()

    built = build(config=providers.Resource(tracked, journal, "config"))
    built.db = providers.Resource(db, built.config)
    built.other = providers.Resource(tracked, journal, "other")
    lifecycle = ResourceLifecycle(built, events)
    assert await lifecycle.start(timeout=START) == []

    stopping = asyncio.ensure_future(lifecycle.stop(Limit(LIMIT, "SHUTDOWN_TIMEOUT")))
    await asyncio.gather(closing_db.wait(), events.when("other", "stop", "ok").wait())
    clock.advance(LIMIT + 50)
    await until(stopping.done, "the hung close cut off by the limit")
    failures = stopping.result()
    assert failures == [
        Failure("resource 'db'", reason="did not close within SHUTDOWN_TIMEOUT"),
        Failure(
            "resource 'config'", reason="was not closed: SHUTDOWN_TIMEOUT passed before its turn"
        ),
    ]
    assert journal.closed() == ["other"]
    assert lifecycle.is_open("config")
    assert not lifecycle.is_open("db")
    assert await lifecycle.stop(10) == []
    assert journal.closed() == ["other", "config"]
    assert not is_in_use(lifecycle)


async def test_a_sync_close_that_hangs_in_its_thread_is_bounded_too() -> None:
    """A thread cannot be cancelled, but stop() does not wait for it past its limit."""
    release, ended = threading.Event(), threading.Event()

    def stuck() -> Iterator[str]:
        yield "stuck"
        try:
            wait_in_thread(release)
        finally:
            ended.set()

    lifecycle = ResourceLifecycle(build(stuck=providers.Resource(stuck)))
    assert await lifecycle.start(timeout=START) == []
    try:
        assert await lifecycle.stop(Limit(0.2, "SHUTDOWN")) == [
            Failure("resource 'stuck'", reason="did not close within SHUTDOWN")
        ]
        assert not ended.is_set()
    finally:
        release.set()
        assert await asyncio.to_thread(ended.wait, 10)


async def test_a_stop_limit_in_seconds_is_named_by_the_limit_argument() -> None:
    """stop(seconds, limit=...) names the limit in its reasons; without it, the seconds."""

    async def stuck() -> AsyncIterator[str]:
        yield "stuck"
        await asyncio.Event().wait()

    for label, named in [("SHUTDOWN (0.2 s)", "SHUTDOWN (0.2 s)"), ("", "the time limit (0.2 s)")]:
        lifecycle = ResourceLifecycle(build(stuck=providers.Resource(stuck)))
        assert await lifecycle.start(timeout=START) == []
        assert await lifecycle.stop(0.2, limit=label) == [
            Failure("resource 'stuck'", reason=f"did not close within {named}")
        ]


# -- known bugs ---------------------------------------------------------------------------


async def test_a_sync_dependent_opened_late_in_its_thread_closes_before_its_dependency(
    clock: LoopClock,
) -> None:
    """Reverse dependency order holds for a sync resource whose thread outlived the startup.

    The dependency has opened, and the dependent's thread is running, before the test
    lets the startup's limit pass.
    """
    journal = Journal()
    entered, release, opened = threading.Event(), threading.Event(), threading.Event()

    def dependent(base: str) -> Iterator[str]:
        entered.set()
        wait_in_thread(release)
        journal.add("open dependent")
        opened.set()
        yield "dependent"
        journal.add("close dependent")

    built = build(base=providers.Resource(tracked, journal, "base"))
    built.dependent = providers.Resource(dependent, built.base)
    lifecycle = ResourceLifecycle(built)
    starting = asyncio.ensure_future(lifecycle.start(timeout=Limit(LIMIT, "STARTUP")))
    # Its thread runs once base is open.
    await until(entered.is_set, "the dependent's thread runs")
    clock.advance(LIMIT + 50)
    await until(starting.done, "the start cut off by its limit")
    failures = starting.result()
    assert failures == [Failure("resource 'dependent'", reason="did not finish within STARTUP")]
    release.set()
    assert await asyncio.to_thread(opened.wait, 10)
    assert await lifecycle.stop(10) == []
    assert journal.entries == ["open base", "open dependent", "close dependent", "close base"]


async def test_a_cancelled_start_that_opened_nothing_forgets_the_loop() -> None:
    """``loop`` is documented as set "while any of them is open": not after nothing opened."""
    started, cancelled = asyncio.Event(), asyncio.Event()
    lifecycle = ResourceLifecycle(build(slow=providers.Resource(hanging, started, cancelled)))
    starting = asyncio.create_task(lifecycle.start(timeout=START))
    await started.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert cancelled.is_set()
    assert not is_in_use(lifecycle)
    assert loop_of(lifecycle) is None
