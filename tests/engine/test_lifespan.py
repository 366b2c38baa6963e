"""Lifespan: phases, all-or-nothing startup with rollback, cancellation, the shutdown budget."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from dependency_injector import providers

from lifespan_container.engine.guard import Advice
from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.lifespan import Lifespan
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.steps import CANCEL_GRACE, Failure, Tracker, run_concurrently
from lifespan_container.exceptions import ShutdownFailedError, StartupFailedError
from tests.clock import LoopClock, until
from tests.engine.support import (
    Events,
    Journal,
    build,
    hanging,
    is_in_use,
    throw,
    tracked,
    wait_in_thread,
)

pytestmark = pytest.mark.asyncio

STARTUP, SHUTDOWN = Limit(10, "STARTUP"), Limit(10, "SHUTDOWN")
"""For phases that must finish: bounds that only a hung test reaches."""

LIMIT = 100
"""A time limit under test: real time never reaches it; the test moves the clock past it."""

Receivers = Callable[[Tracker, Limit], Awaitable[list[Failure]]]


def phase_of(lifespan: Lifespan) -> str:
    """``lifespan.phase`` now (read through a function: mypy would keep it narrowed)."""
    return lifespan.phase


def receivers_of(steps: dict[str, Callable[[], Awaitable[None]]], *, shutdown: bool) -> Receivers:
    """Receivers as the Django layer runs them: each a tracked step; at startup they fail
    fast within the startup's own limit, at shutdown each runs within the limit given."""

    async def run(tracker: Tracker, limit: Limit) -> list[Failure]:
        async def call(name: str, step: Callable[[], Awaitable[None]]) -> None:
            with tracker.step(name):
                await step()

        return await run_concurrently(
            [(f"receiver {n!r}", call(f"receiver {n!r}", s)) for n, s in steps.items()],
            fail_fast=not shutdown,
            timeout=limit if shutdown else None,
        )

    return run


def at_startup(**steps: Callable[[], Awaitable[None]]) -> Receivers:
    return receivers_of(steps, shutdown=False)


def at_shutdown(**steps: Callable[[], Awaitable[None]]) -> Receivers:
    return receivers_of(steps, shutdown=True)


async def never() -> None:
    await asyncio.Event().wait()


def watched(lifespan: list[Lifespan], journal: Journal, name: str) -> providers.Resource[str]:
    """A resource that journals the lifespan's phase when it opens and closes."""

    async def resource() -> AsyncIterator[str]:
        journal.add(f"open {name} while {lifespan[0].phase}")
        yield name
        journal.add(f"close {name} while {lifespan[0].phase}")

    return providers.Resource(resource)


async def test_the_phases_of_a_lifespan_that_goes_well() -> None:
    """idle, starting (resources, then receivers), serving, stopping (receivers, then
    resources), stopped."""
    journal, holder = Journal(), list[Lifespan]()
    lifespan = Lifespan(ResourceLifecycle(build(db=watched(holder, journal, "db"))))
    holder.append(lifespan)

    async def note(what: str) -> None:
        journal.add(f"{what} while {lifespan.phase}")

    assert phase_of(lifespan) == "idle"
    await lifespan.start(STARTUP, SHUTDOWN, at_startup(warm=lambda: note("warm")))
    assert phase_of(lifespan) == "serving"
    await lifespan.stop(SHUTDOWN, at_shutdown(drain=lambda: note("drain")))
    assert phase_of(lifespan) == "stopped"
    assert journal.entries == [
        "open db while starting",
        "warm while starting",
        "drain while stopping",
        "close db while stopping",
    ]


async def test_a_failed_startup_rolls_back_and_names_the_failure() -> None:
    """StartupFailedError says "Startup failed: ..." with the failure, chained to its error;
    what was opened is closed again and the phase ends stopped."""
    journal, events = Journal(), Events()
    error = ValueError("boom")

    async def bad(after: asyncio.Event) -> AsyncIterator[str]:
        await after.wait()
        throw(error)
        yield "never"

    built = build(good=providers.Resource(tracked, journal, "good"))
    built.bad = providers.Resource(bad, events.when("good", "start", "ok"))
    lifecycle = ResourceLifecycle(built, events)
    lifespan = Lifespan(lifecycle)
    with pytest.raises(StartupFailedError) as failed:
        await lifespan.start(STARTUP, SHUTDOWN)
    assert str(failed.value) == "Startup failed: resource 'bad' raised ValueError: boom."
    assert failed.value.failures == (Failure("resource 'bad'", error),)
    assert failed.value.__cause__ is error
    assert journal.entries == ["open good", "close good"]
    assert phase_of(lifespan) == "stopped"
    assert not is_in_use(lifecycle)


async def test_a_startup_timeout_names_each_step_it_waited_for(clock: LoopClock) -> None:
    """Every resource and receiver still running at the limit is named, with the limit.

    What must open has opened, and the hung steps are running, before the test lets
    the limit pass.
    """
    started, cancelled = asyncio.Event(), asyncio.Event()
    journal, events = Journal(), Events()
    built = build(
        good=providers.Resource(tracked, journal, "good"),
        slow=providers.Resource(hanging, started, cancelled),
    )
    lifespan = Lifespan(ResourceLifecycle(built, events))
    starting = asyncio.ensure_future(lifespan.start(Limit(LIMIT, f"STARTUP ({LIMIT} s)"), SHUTDOWN))
    await asyncio.gather(started.wait(), events.when("good", "start", "ok").wait())
    clock.advance(LIMIT + 50)
    await until(starting.done, "the startup cut off by its limit")
    with pytest.raises(StartupFailedError) as failed:
        await starting
    assert failed.value.failures == (
        Failure("resource 'slow'", reason=f"did not finish within STARTUP ({LIMIT} s)"),
    )
    assert cancelled.is_set()
    assert journal.entries == ["open good", "close good"]

    waiting: list[str] = []

    def hang(name: str) -> Callable[[], Awaitable[None]]:
        async def receiver() -> None:
            waiting.append(name)
            await never()

        return receiver

    lifespan = Lifespan(ResourceLifecycle(build(good=providers.Resource(tracked, journal, "g"))))
    receivers = at_startup(a=hang("a"), b=hang("b"))
    starting = asyncio.ensure_future(lifespan.start(Limit(LIMIT, "STARTUP"), SHUTDOWN, receivers))
    # The receivers run once the resources are open: "g" opened.
    await until(lambda: sorted(waiting) == ["a", "b"], "both receivers running")
    clock.advance(LIMIT + 50)
    await until(starting.done, "the startup cut off by its limit")
    with pytest.raises(StartupFailedError) as failed:
        await starting
    reason = "did not finish within STARTUP"
    assert set(failed.value.failures) == {
        Failure("receiver 'a'", reason=reason),
        Failure("receiver 'b'", reason=reason),
    }
    assert str(failed.value).startswith("Startup failed: receiver ")
    assert f"receiver 'a' {reason}" in str(failed.value)
    assert f"receiver 'b' {reason}" in str(failed.value)
    assert journal.closed()[-1] == "g"
    assert phase_of(lifespan) == "stopped"


async def test_a_failed_rollback_is_added_to_the_message() -> None:
    """When closing the opened resources fails too, the message says so after the failure."""
    error = RuntimeError("warm-up failed")

    async def db() -> AsyncIterator[str]:
        yield "db"
        throw(OSError("close failed"))

    async def warm() -> None:
        raise error

    lifespan = Lifespan(ResourceLifecycle(build(db=providers.Resource(db))))
    with pytest.raises(StartupFailedError) as failed:
        await lifespan.start(STARTUP, SHUTDOWN, at_startup(warm=warm))
    assert str(failed.value) == (
        "Startup failed: receiver 'warm' raised RuntimeError: warm-up failed. Closing the "
        "opened resources also failed: resource 'db' raised OSError: close failed."
    )
    assert failed.value.failures == (Failure("receiver 'warm'", error),)
    assert phase_of(lifespan) == "stopped"


@pytest.mark.parametrize("where", ["resources", "receivers", "thread"])
async def test_a_cancelled_startup_closes_what_it_opened_and_reraises(where: str) -> None:
    """Cancelled by the server: the opened resources close, CancelledError goes on; a sync
    resource still opening in its thread is closed when its thread finishes."""
    journal, events = Journal(), Events()
    started, cancelled = asyncio.Event(), asyncio.Event()
    release = threading.Event()

    async def good() -> AsyncIterator[str]:
        journal.add("open good")
        yield "good"
        journal.add("close good")
        release.set()  # a thread still opening ends only once the rollback began

    def sync() -> Iterator[str]:
        started_in_thread.set()
        wait_in_thread(release)
        journal.add("open sync")
        yield "sync"
        journal.add("close sync")

    async def hang() -> None:
        started.set()
        try:
            await never()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    started_in_thread = threading.Event()
    built = build(good=providers.Resource(good))
    receivers = None
    if where == "resources":
        built.slow = providers.Resource(hanging, started, cancelled)
    elif where == "receivers":
        receivers = at_startup(hang=hang)
    else:
        built.sync = providers.Resource(sync)
    lifecycle = ResourceLifecycle(built, events)
    lifespan = Lifespan(lifecycle)
    starting = asyncio.create_task(lifespan.start(STARTUP, SHUTDOWN, receivers))
    await events.when("good", "start", "ok").wait()
    if where == "thread":
        assert await asyncio.to_thread(started_in_thread.wait, 10)
    else:
        await started.wait()
    assert phase_of(lifespan) == "starting"
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    if where == "thread":
        assert journal.entries == ["open good", "close good", "open sync", "close sync"]
    else:
        assert cancelled.is_set()
        assert journal.entries == ["open good", "close good"]
    assert phase_of(lifespan) == "stopped"
    assert not is_in_use(lifecycle)


async def test_a_second_lifespan_is_refused_while_the_resources_are_open() -> None:
    """One container serves one lifespan at a time; the advice is appended when given."""
    lifecycle = ResourceLifecycle(build(db=providers.Resource(tracked, Journal(), "db")))
    first = Lifespan(lifecycle)
    await first.start(STARTUP, SHUTDOWN)
    try:
        for advice, ending in [
            (Advice(already_open="Use one."), " time. Use one."),
            (None, " time."),
        ]:
            second = Lifespan(lifecycle, advice)
            with pytest.raises(StartupFailedError, match="already open") as refused:
                await second.start(STARTUP, SHUTDOWN)
            assert str(refused.value).endswith(f"One container serves one lifespan at a{ending}")
            assert phase_of(second) == "idle"
        assert phase_of(first) == "serving"
    finally:
        await first.stop(SHUTDOWN)


async def test_a_lifespan_without_a_container_runs_only_the_receivers() -> None:
    """Lifespan(None) starts and stops with the receivers alone."""
    ran: list[str] = []

    async def note(what: str) -> None:
        ran.append(what)

    lifespan = Lifespan(None)
    await lifespan.start(STARTUP, SHUTDOWN, at_startup(up=lambda: note("up")))
    assert phase_of(lifespan) == "serving"
    await lifespan.stop(SHUTDOWN, at_shutdown(down=lambda: note("down")))
    assert (ran, phase_of(lifespan)) == (["up", "down"], "stopped")


async def test_shutdown_receivers_get_half_the_limit_and_the_resources_still_close(
    clock: LoopClock,
) -> None:
    """A hanging shutdown receiver is cut at half of the limit; the resources close after it.

    The clock moves past half of the limit, not past the limit: the resources close
    within the half left to them.
    """
    journal, given, hanging_on = Journal(), [], asyncio.Event()
    lifespan = Lifespan(ResourceLifecycle(build(db=providers.Resource(tracked, journal, "db"))))
    await lifespan.start(STARTUP, SHUTDOWN)

    async def hang_noted() -> None:
        hanging_on.set()
        await never()

    hang = at_shutdown(hang=hang_noted)

    async def receivers(tracker: Tracker, limit: Limit) -> list[Failure]:
        given.append(limit)
        return await hang(tracker, limit)

    stopping = asyncio.ensure_future(lifespan.stop(Limit(LIMIT, "SHUTDOWN_TIMEOUT"), receivers))
    await hanging_on.wait()
    assert journal.entries == ["open db"]  # not before the receivers are done
    clock.advance(LIMIT * 0.6)  # past half of the limit, not past the limit
    await until(stopping.done, "the receiver cut off at half of the limit")
    with pytest.raises(ShutdownFailedError) as failed:
        await stopping
    half = f"{LIMIT / 2:g} s, half of SHUTDOWN_TIMEOUT"
    assert given == [Limit(LIMIT / 2, half)]
    assert str(failed.value) == (
        f"Shutdown finished with errors: receiver 'hang' did not finish within {half}."
    )
    assert journal.entries == ["open db", "close db"]
    assert phase_of(lifespan) == "stopped"


async def test_receivers_that_overrun_their_half_are_cut_off_by_the_lifespan(
    clock: LoopClock,
) -> None:
    """Receivers that ignore the limit they are given: the lifespan bounds them itself
    (their half, then the grace their own bound would take), and the resources close."""
    journal, started = Journal(), asyncio.Event()
    lifespan = Lifespan(ResourceLifecycle(build(db=providers.Resource(tracked, journal, "db"))))
    await lifespan.start(STARTUP, SHUTDOWN)

    async def unbounded(tracker: Tracker, limit: Limit) -> list[Failure]:
        started.set()
        await never()
        return []  # pragma: no cover

    stopping = asyncio.ensure_future(lifespan.stop(Limit(LIMIT, "SHUTDOWN_TIMEOUT"), unbounded))
    await started.wait()
    clock.advance(LIMIT / 2)  # their half
    for _ in range(20):  # the timers due fire, and what they wake runs
        await asyncio.sleep(0)
    assert not stopping.done()  # the grace of a bound of their own
    assert journal.entries == ["open db"]
    clock.advance(CANCEL_GRACE)
    await until(stopping.done, "the receivers cut off")
    with pytest.raises(ShutdownFailedError) as failed:
        await stopping
    assert str(failed.value) == (
        "Shutdown finished with errors: the shutdown's receivers did not finish within "
        f"{LIMIT / 2:g} s, half of SHUTDOWN_TIMEOUT."
    )
    assert journal.entries == ["open db", "close db"]


async def test_shutdown_reports_every_failure_and_the_resources_get_the_time_left(
    clock: LoopClock,
) -> None:
    """A failing receiver, a failing close and a hung close are all in ShutdownFailedError.

    The failing close has failed, and the hung one is running, before the test lets
    the limit pass.
    """
    receiver_error, close_error = RuntimeError("drain"), OSError("close")
    events, closing_stuck = Events(), asyncio.Event()

    async def fails() -> AsyncIterator[str]:
        yield "fails"
        throw(close_error)

    async def stuck() -> AsyncIterator[str]:
        yield "stuck"
        closing_stuck.set()
        await never()

    async def drain() -> None:
        raise receiver_error

    built = build(fails=providers.Resource(fails), stuck=providers.Resource(stuck))
    lifespan = Lifespan(ResourceLifecycle(built, events))
    await lifespan.start(STARTUP, SHUTDOWN)
    stopping = asyncio.ensure_future(
        lifespan.stop(Limit(LIMIT, "SHUTDOWN"), at_shutdown(drain=drain))
    )
    # The receiver's failure comes first: the closes begin after it.
    await asyncio.gather(closing_stuck.wait(), events.when("fails", "stop", "failed").wait())
    clock.advance(LIMIT + 50)
    await until(stopping.done, "the hung close cut off by the limit")
    with pytest.raises(ShutdownFailedError) as failed:
        await stopping
    assert failed.value.failures == (
        Failure("receiver 'drain'", receiver_error),
        Failure("resource 'stuck'", reason="did not close within SHUTDOWN"),
        Failure("resource 'fails'", close_error),
    )
    assert failed.value.__cause__ is receiver_error
    assert phase_of(lifespan) == "stopped"


async def test_a_cancelled_shutdown_still_closes_the_resources() -> None:
    """Cancelling stop() while the receivers run: the resources close, the cancellation goes on."""
    journal, started = Journal(), asyncio.Event()
    lifecycle = ResourceLifecycle(build(db=providers.Resource(tracked, journal, "db")))
    lifespan = Lifespan(lifecycle)
    await lifespan.start(STARTUP, SHUTDOWN)

    async def hang() -> None:
        started.set()
        await never()

    stopping = asyncio.create_task(lifespan.stop(SHUTDOWN, at_shutdown(hang=hang)))
    await started.wait()
    assert phase_of(lifespan) == "stopping"
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert journal.entries == ["open db", "close db"]
    assert phase_of(lifespan) == "stopped"
    assert not is_in_use(lifecycle)


async def test_an_error_carrying_credentials_is_masked_and_not_chained() -> None:
    """The message masks the password, and the raw error is not chained for the server to print."""
    error = ValueError("cannot reach postgresql://app:hunter2@db/app")

    async def bad() -> AsyncIterator[str]:
        throw(error)
        yield "never"

    lifespan = Lifespan(ResourceLifecycle(build(db=providers.Resource(bad))))
    with pytest.raises(StartupFailedError) as failed:
        await lifespan.start(STARTUP, SHUTDOWN)
    assert "hunter2" not in str(failed.value)
    assert "postgresql://app:****@db/app" in str(failed.value)
    assert failed.value.__cause__ is None
    assert failed.value.failures[0].error is error
