"""A sync resource still opening in its thread when startup gives up, and what it needs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from dependency_injector import providers

from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.limits import Limit
from tests.clock import LoopClock, until
from tests.engine.support import Journal, build, is_in_use, tracked

pytestmark = pytest.mark.asyncio


def stuck_in_thread(
    journal: Journal, entered: threading.Event, gate: threading.Event, base: str
) -> Iterator[str]:
    """A sync resource using ``base`` that opens only once ``gate`` is set."""
    entered.set()
    gate.wait(30)  # bounded: the test sets it, at the latest when it ends
    journal.add("open stuck")
    yield f"stuck on {base}"
    journal.add("close stuck")


async def given_up_while_stuck_in_its_thread() -> tuple[
    ResourceLifecycle, Journal, threading.Event
]:
    """A lifecycle whose startup was cancelled while ``stuck`` opens in its thread.

    ``base`` is open; ``stuck`` (which needs it) opens once the returned gate is set.
    """
    journal, entered, gate = Journal(), threading.Event(), threading.Event()
    built = build(base=providers.Resource(tracked, journal, "base"))
    built.stuck = providers.Resource(stuck_in_thread, journal, entered, gate, built.base)
    lifecycle = ResourceLifecycle(built)
    starting = asyncio.ensure_future(lifecycle.start())
    await asyncio.to_thread(entered.wait, 30)
    starting.cancel()
    await asyncio.wait([starting])
    return lifecycle, journal, gate


async def test_what_a_thread_stuck_past_the_shutdown_limit_needs_still_closes(
    clock: LoopClock,
) -> None:
    """The dependency waits for the thread half of the limit at most, then closes.

    It closes before the limit passes (not cut off with it), and then the lifecycle
    is free for another lifespan: nothing stays open.
    """
    lifecycle, journal, gate = await given_up_while_stuck_in_its_thread()
    try:
        stopping = asyncio.ensure_future(lifecycle.stop(Limit(100, "SHUTDOWN")))
        await asyncio.sleep(0)  # the stop is waiting for the thread
        clock.advance(60)  # past half of the limit, not past the limit
        await until(lambda: "close base" in journal.entries, "base closes before the limit")
        assert not stopping.done()  # still waiting for the thread, within the limit
        clock.advance(50)
        assert await stopping == []  # the stuck thread is logged, not a failure
        assert journal.entries == ["open base", "close base"]
        assert not is_in_use(lifecycle)
    finally:
        gate.set()


async def test_a_thread_that_finishes_in_time_closes_before_what_it_needs() -> None:
    """Opened late but within the limit: closed first, then its dependency."""
    lifecycle, journal, gate = await given_up_while_stuck_in_its_thread()
    stopping = asyncio.ensure_future(lifecycle.stop(30))
    await asyncio.sleep(0)  # the stop is waiting for the thread
    gate.set()
    assert await stopping == []
    assert journal.entries == ["open base", "open stuck", "close stuck", "close base"]


async def test_a_thread_that_opens_after_the_shutdown_gave_up_is_closed_then(
    clock: LoopClock,
) -> None:
    """Not left open for the next startup to find initialised: closed in a thread."""
    lifecycle, journal, gate = await given_up_while_stuck_in_its_thread()
    try:
        stopping = asyncio.ensure_future(lifecycle.stop(Limit(100, "SHUTDOWN")))
        await asyncio.sleep(0)
        clock.advance(60)  # past half the limit: base closes without it
        await until(lambda: "close base" in journal.entries, "base closes")
        clock.advance(50)  # past the limit: the shutdown gives up on the thread
        assert await stopping == []
    finally:
        gate.set()
    await until(lambda: "close stuck" in journal.entries, "the late resource is closed")
    assert journal.entries == ["open base", "close base", "open stuck", "close stuck"]
    assert await lifecycle.start() == []  # opened afresh, on an open base
    assert journal.entries[-2:] == ["open base", "open stuck"]
    assert await lifecycle.stop(10) == []


async def test_a_stop_cancelled_by_its_caller_leaves_no_close_running_unwatched() -> None:
    """The closes still running are cancelled with it, within the cancel grace."""
    journal = Journal()
    closing, never = asyncio.Event(), asyncio.Event()

    async def hangs_on_close() -> AsyncIterator[str]:
        yield "hangs"
        closing.set()
        await never.wait()

    built = build(hangs=providers.Resource(hangs_on_close))
    built.other = providers.Resource(tracked, journal, "other")
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    stopping = asyncio.ensure_future(lifecycle.stop(Limit(100, "SHUTDOWN")))
    await closing.wait()
    await until(lambda: "close other" in journal.entries, "the other resource closes")
    stopping.cancel()
    await asyncio.wait([stopping])
    assert stopping.cancelled()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert all(t.done() for t in others if "_close" in repr(t.get_coro()))
