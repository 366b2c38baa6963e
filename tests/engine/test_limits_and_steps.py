"""The engine's time limits and concurrent steps: labels, failures, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import functools
import logging
import math

import pytest

from lifespan_container.engine import steps
from lifespan_container.engine.limits import Limit, non_negative_number, positive_number
from lifespan_container.engine.steps import (
    Failure,
    Tracker,
    cancel_and_wait,
    describe,
    run_concurrently,
)
from tests.clock import LoopClock, until

LIMIT = 100
"""A time limit under test: real time never reaches it; the test moves the clock past it."""

# -- limits --------------------------------------------------------------------------------


def test_a_limit_is_named_by_its_label_or_else_by_its_seconds() -> None:
    """str() of a Limit is its label when it has one, its seconds otherwise."""
    assert str(Limit(30, "SHUTDOWN_TIMEOUT (30 s)")) == "SHUTDOWN_TIMEOUT (30 s)"
    assert str(Limit(2.5)) == "the time limit (2.5 s)"
    assert str(Limit(30.0)) == "the time limit (30 s)"


def test_a_share_of_a_limit_names_the_limit_it_is_part_of() -> None:
    """share(0.5) is half the seconds, labelled "half of" the whole; other parts by number."""
    half = Limit(30, "SHUTDOWN").share(0.5)
    assert half == Limit(15.0, "15 s, half of SHUTDOWN")
    assert str(Limit(2).share(0.25)) == "0.5 s, 0.25 of the time limit (2 s)"


@pytest.mark.parametrize(
    ("value", "positive", "non_negative"),
    [
        (1, True, True),
        (0.5, True, True),
        (0, False, True),
        (0.0, False, True),
        (-1, False, False),
        (True, False, False),
        (False, False, False),
        ("5", False, False),
        (None, False, False),
        (math.inf, False, False),
        (math.nan, False, False),
        (10**400, False, False),
    ],
)
def test_only_finite_int_or_float_seconds_are_numbers_of_seconds(
    value: object, positive: bool, non_negative: bool
) -> None:
    """Bools, strings, infinities, NaN and ints too large for a float are refused."""
    assert positive_number(value) is positive
    assert non_negative_number(value) is non_negative


# -- failures and the tracker -----------------------------------------------------------


def test_a_failure_names_its_step_and_its_error_or_reason_masked() -> None:
    """A failure reads "<step> raised <Type: message>" or "<step> <reason>", credentials masked."""
    raised = Failure("resource 'db'", ValueError("no route to postgresql://u:hunter2@h/db"))
    assert str(raised) == "resource 'db' raised ValueError: no route to postgresql://u:****@h/db"
    hung = Failure("resource 'db'", reason="did not finish within the time limit (1 s)")
    assert str(hung) == "resource 'db' did not finish within the time limit (1 s)"
    assert describe([raised, hung]) == f"{raised}; {hung}"
    assert describe([]) == ""


def test_the_tracker_knows_the_running_steps_and_the_interrupted_ones() -> None:
    """A step is running inside its block; it is interrupted only if cancelled there."""
    tracker = Tracker()
    with tracker.step("a"):
        assert list(tracker.running) == ["a"]
    with pytest.raises(ValueError, match="boom"), tracker.step("b"):
        raise ValueError("boom")
    with pytest.raises(asyncio.CancelledError), tracker.step("c"):
        raise asyncio.CancelledError
    assert tracker.running == {}
    assert tracker.interrupted == ["c"]


# -- run_concurrently -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_steps_is_no_failure() -> None:
    """An empty list of steps returns at once with nothing failed."""
    assert await run_concurrently([], fail_fast=True, timeout=Limit(1)) == []


@pytest.mark.asyncio
async def test_steps_run_concurrently_and_failures_come_in_the_order_of_the_steps() -> None:
    """Without fail_fast every step runs to its end; failures keep the order of the steps."""
    first_started, second_started = asyncio.Event(), asyncio.Event()
    late, early = ValueError("late"), KeyError("early")

    async def first() -> None:
        first_started.set()
        await second_started.wait()
        await asyncio.sleep(0)  # let the second one fail first
        raise late

    async def second() -> None:
        second_started.set()
        await first_started.wait()
        raise early

    async def fine() -> None:
        await asyncio.gather(first_started.wait(), second_started.wait())

    failures = await run_concurrently(
        [("first", first()), ("fine", fine()), ("second", second())], fail_fast=False
    )
    assert failures == [Failure("first", late), Failure("second", early)]


@pytest.mark.asyncio
async def test_fail_fast_cancels_the_siblings_which_are_not_failures() -> None:
    """The first failure cancels the steps still running; only the failure is returned."""
    sibling_started, sibling_cancelled = asyncio.Event(), asyncio.Event()
    error = RuntimeError("boom")

    async def sibling() -> None:
        sibling_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise

    async def failing() -> None:
        await sibling_started.wait()
        raise error

    failures = await run_concurrently(
        [("sibling", sibling()), ("failing", failing())], fail_fast=True, timeout=Limit(10)
    )
    assert failures == [Failure("failing", error)]
    assert sibling_cancelled.is_set()


@pytest.mark.asyncio
async def test_a_timeout_names_the_steps_still_running_by_the_limits_label(
    clock: LoopClock,
) -> None:
    """Steps still running at the limit are cancelled and reported with the limit's label.

    Failures collected before the limit are kept; steps that finished are not reported.
    Every step has done its part before the test lets the limit pass.
    """
    error = ValueError("early")
    waiting: list[str] = []
    ended: list[str] = []
    cancelled: list[str] = []

    async def hang(name: str) -> None:
        waiting.append(name)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    # Each notes its end in the step that ends its task.
    async def fail() -> None:
        ended.append("fail")
        raise error

    async def finish() -> None:
        ended.append("done")

    running = asyncio.ensure_future(
        run_concurrently(
            [("a", hang("a")), ("fail", fail()), ("done", finish()), ("b", hang("b"))],
            fail_fast=False,
            timeout=Limit(LIMIT, f"STARTUP_TIMEOUT ({LIMIT} s)"),
        )
    )
    await until(lambda: len(waiting) == len(ended) == 2, "every step did its part")
    clock.advance(LIMIT + 50)
    await until(running.done, "the steps still running cut off by the limit")
    assert running.result() == [
        Failure("a", reason=f"did not finish within STARTUP_TIMEOUT ({LIMIT} s)"),
        Failure("fail", error),
        Failure("b", reason=f"did not finish within STARTUP_TIMEOUT ({LIMIT} s)"),
    ]
    assert sorted(cancelled) == ["a", "b"]


@pytest.mark.asyncio
async def test_the_callers_cancellation_cancels_every_step() -> None:
    """Cancelling the caller cancels each task before the cancellation goes on."""
    started = [asyncio.Event(), asyncio.Event()]
    cancelled: list[int] = []

    async def hang(index: int) -> None:
        started[index].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(index)
            raise

    caller = asyncio.create_task(
        run_concurrently([("0", hang(0)), ("1", hang(1))], fail_fast=False)
    )
    await asyncio.gather(*(event.wait() for event in started))
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert sorted(cancelled) == [0, 1]


# -- cancel_and_wait ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancel_and_wait_cancels_and_waits_for_each_task() -> None:
    """Tasks that accept their cancellation are all done when it returns."""
    tasks = [asyncio.create_task(asyncio.Event().wait()) for _ in range(3)]
    await asyncio.sleep(0)
    await cancel_and_wait(tasks)
    assert all(task.cancelled() for task in tasks)
    await cancel_and_wait([])  # nothing to wait for


@pytest.mark.asyncio
async def test_a_task_ignoring_its_cancellation_is_left_behind_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """cancel_and_wait is bounded by CANCEL_GRACE: a stubborn task is logged and left running."""
    monkeypatch.setattr(steps, "CANCEL_GRACE", 0.1)
    started, release = asyncio.Event(), asyncio.Event()

    async def stubborn() -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # ignores the cancellation
        return "ended on its own"

    task = asyncio.create_task(stubborn(), name="stubborn step")
    await started.wait()
    with caplog.at_level(logging.ERROR, logger="lifespan_container"):
        await cancel_and_wait([task])
    assert not task.done()
    assert "ignored its cancellation for 0.1 s and is left running: stubborn step" in caplog.text
    release.set()
    assert await task == "ended on its own"


@pytest.mark.asyncio
async def test_run_concurrently_stays_bounded_by_a_step_ignoring_its_cancellation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A step that ignores the timeout's cancellation is reported as timed out, not waited for."""
    monkeypatch.setattr(steps, "CANCEL_GRACE", 0.1)
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()

    with caplog.at_level(logging.ERROR, logger="lifespan_container"):
        failures = await run_concurrently(
            [("stubborn", stubborn())], fail_fast=False, timeout=Limit(0.1)
        )
    assert failures == [Failure("stubborn", reason="did not finish within the time limit (0.1 s)")]
    assert "left running: stubborn" in caplog.text
    (left,) = [t for t in asyncio.all_tasks() if t.get_name() == "stubborn"]
    release.set()
    await left


@pytest.mark.asyncio
async def test_two_running_steps_with_the_same_name_are_tracked_without_error() -> None:
    """Two receivers ``app.make.<locals>.warm`` running at once both succeed."""
    tracker = Tracker()
    name = "receiver 'app.make.<locals>.warm'"
    entered = [asyncio.Event(), asyncio.Event()]

    async def warm(index: int) -> None:
        with tracker.step(name):
            entered[index].set()
            await asyncio.gather(*(event.wait() for event in entered))

    assert await run_concurrently([(name, warm(0)), (name, warm(1))], fail_fast=False) == []
    assert tracker.running == {}


def warm_cache(size: int) -> None:
    """A function that a partial wraps."""


def test_a_partial_is_named_by_the_function_it_wraps() -> None:
    named = functools.partial(functools.partial(warm_cache, 1))
    assert steps.qualified_name(named) == f"{__name__}.warm_cache"
    assert steps.qualified_name(warm_cache) == f"{__name__}.warm_cache"


def test_what_is_left_of_a_limit_says_what_used_the_rest() -> None:
    half = Limit(30, "half of SHUTDOWN")
    assert half.rest(12, "the wait") == Limit(18, "what the wait left of half of SHUTDOWN")
    assert half.rest(45, "the wait").seconds == 0
