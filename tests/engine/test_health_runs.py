"""Runs of health checks on a bare lifecycle: bounded, shared, started again only once ended.

No Django: a ``ResourceLifecycle`` and ``run_checks``, in plain asyncio. The probes
through the views, and the settings, are tested in ``tests/integration``.

A check that must be cut off waits on an event never set. Where a check must also
finish in time, the limit is a generous one (:data:`LIMIT`): the test waits until
that check has its result, then moves the loop's clock past the limit (see
``tests/clock.py``).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from dependency_injector import containers, providers

from lifespan_container.engine import health
from lifespan_container.engine.health import CheckResult, run_checks
from lifespan_container.engine.health_checks import health_check
from lifespan_container.engine.lifecycle import ResourceLifecycle
from tests.clock import LoopClock, until
from tests.engine.support import Tally, settled, waiting

pytestmark = pytest.mark.asyncio

LIMIT = 10.0
"""A limit no check that must finish can miss; the test moves the clock past it."""


async def _yield(value: object) -> AsyncIterator[object]:
    yield value


# -- one probe -------------------------------------------------------------------------------


async def test_a_hanging_check_is_cut_off_by_its_timeout_and_the_others_still_report(
    clock: LoopClock,
) -> None:
    """Async checks waiting on events never set, and a sync one blocked in its thread.

    The sync check that returns must have its result before the limit passes: the
    test waits for it, then moves the clock past the limit.
    """
    never = asyncio.Event()
    blocked = threading.Event()
    returned: list[threading.Thread] = []
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")
    built.hangs_long = providers.Resource(_yield, "hangs long")
    built.blocks = providers.Resource(_yield, "blocks")
    built.fine = providers.Resource(_yield, "fine")

    @health_check(built.hangs)
    async def wait_forever(value: str) -> None:
        await never.wait()

    @health_check(built.hangs_long, timeout=5)
    async def wait_forever_too(value: str) -> None:
        await never.wait()

    @health_check(built.blocks)
    def block(value: str) -> None:
        blocked.wait(30)

    @health_check(built.fine)
    def returns_false(value: str) -> bool:
        returned.append(threading.current_thread())
        return False

    def threads_ended() -> bool:
        return not any(thread.is_alive() for thread in returned)

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        probing = asyncio.ensure_future(run_checks(lifecycle, timeout=LIMIT))
        await until(lambda: settled(lifecycle, returns_false), "the sync check's result")
        clock.advance(LIMIT)
        results = {r.name: r for r in await probing}
        await until(threads_ended, "the returning check's thread ended")
        # The blocked check is left behind in a daemon thread of its own, never in
        # the loop's executor; while it runs, it is not started again.
        [thread] = [t for t in threading.enumerate() if t.name == "lifespan-health-check"]
        assert thread.daemon
        probing = asyncio.ensure_future(run_checks(lifecycle, timeout=LIMIT))
        await until(lambda: waiting(lifecycle) >= 2, "the hanging checks run again")
        clock.advance(LIMIT)
        again = {r.name: r for r in await probing}
        assert again["blocks"].status == "timeout"
        assert again["blocks"].error is not None
        assert again["blocks"].error.startswith("did not finish within 10 s; still running after ")
        assert again["blocks"].error.endswith(" s, so not started again until it ends")
        await until(threads_ended, "the returning check's threads ended")
        assert [t for t in threading.enumerate() if t.name == "lifespan-health-check"] == [thread]
    finally:
        blocked.set()  # let the thread end
        assert await lifecycle.stop(5) == []
    assert results["hangs"].status == "timeout"
    assert results["hangs"].error == "did not finish within 10 s"
    assert results["hangs"].latency is not None
    assert results["hangs"].latency >= LIMIT
    assert results["hangs_long"].status == "timeout"
    assert results["hangs_long"].error == "did not finish within 5 s"  # its own timeout
    assert results["blocks"].status == "timeout"
    assert results["fine"] == CheckResult(
        "fine",
        "failing",
        f"{__name__}.test_a_hanging_check_is_cut_off_by_its_timeout_and_the_others_still_report.<locals>.returns_false",
        results["fine"].latency,
        "the check returned False",
    )


async def test_health_check_refuses_what_is_not_a_resource_or_a_bad_timeout() -> None:
    class Container(containers.DeclarativeContainer):
        factory = providers.Factory(object)
        resource = providers.Resource(_yield, 1)

    with pytest.raises(TypeError, match=r"takes a Resource provider of a container"):
        health_check(Container.factory)
    for bad in (0, -1, True, "5", float("inf")):
        with pytest.raises(ValueError, match=r"must be a positive number of seconds"):
            health_check(Container.resource, timeout=bad)  # type: ignore[arg-type]


class Infra(containers.DeclarativeContainer):
    db = providers.Resource(_yield, "db")


class Nested(containers.DeclarativeContainer):
    infra = providers.Container(Infra)
    top = providers.Resource(_yield, "top")


@health_check(Infra.db)
async def db_check(value: str) -> bool:
    return value == "db"


@health_check(Nested.top)
def top_check(value: str) -> bool:
    return value == "top"


async def test_checks_declared_on_container_classes_apply_to_their_instances() -> None:
    """Declared on ``Container.x`` (or a nested container's class), found on the instance."""
    lifecycle = ResourceLifecycle(Nested())
    assert await lifecycle.start() == []
    try:
        results = {r.name: (r.status, r.check) for r in await run_checks(lifecycle, 1)}
    finally:
        await lifecycle.stop(5)
    assert results == {
        "infra.db": ("ok", f"{__name__}.db_check"),
        "top": ("ok", f"{__name__}.top_check"),
    }


async def test_a_check_from_another_event_loop_fails_with_the_loop_error() -> None:
    built = containers.DynamicContainer()
    built.client = providers.Resource(_yield, "loop-bound")
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        [result] = await asyncio.to_thread(asyncio.run, run_checks(lifecycle, timeout=1))
    finally:
        assert await lifecycle.stop(5) == []
    assert result.status == "failing"
    assert result.error is not None
    assert "asked for from another event loop" in result.error


async def test_the_cancellation_of_a_probe_itself_propagates() -> None:
    """A probe whose client left (or whose server stops) is cancelled: ``run_checks``
    raises CancelledError rather than reporting it as a failing check. The run it
    waited for goes on, for the probes still waiting."""
    release, started = asyncio.Event(), asyncio.Event()
    runs: list[str] = []
    built = containers.DynamicContainer()
    built.slow = providers.Resource(_yield, "slow")

    @health_check(built.slow)
    async def slow(value: str) -> None:
        runs.append(value)
        started.set()
        await release.wait()  # set by the test once the first probe is cancelled

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        leaving = asyncio.ensure_future(run_checks(lifecycle, timeout=30))
        staying = asyncio.ensure_future(run_checks(lifecycle, timeout=30))
        await asyncio.wait_for(started.wait(), 10)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        release.set()
        [result] = await staying
    finally:
        release.set()
        assert await lifecycle.stop(5) == []
    assert result.status == "ok"
    assert runs == ["slow"]


# -- hung checks -----------------------------------------------------------------------------


async def probe(lifecycle: ResourceLifecycle, count: int, **options: Any) -> list[CheckResult]:
    """``count`` concurrent probes of a lifecycle with one resource: each one's result.

    With a 0.05 s limit, for checks that hang: no check has to finish within it.
    """
    options = {"timeout": 0.05, **options}
    answers = await asyncio.gather(*(run_checks(lifecycle, **options) for _ in range(count)))
    return [result for [result] in answers]


async def first_ok(lifecycle: ResourceLifecycle) -> CheckResult:
    """Probe until a result is ``ok`` (bounded): once the hung run has ended.

    The released check must then finish in time: the limit is :data:`LIMIT`.
    """
    for _ in range(2000):
        [result] = await run_checks(lifecycle, LIMIT)
        if result.ok:
            return result
        await asyncio.sleep(0.005)
    msg = "the released check never passed"
    raise AssertionError(msg)


async def test_a_hung_sync_check_is_not_started_again_until_it_ends() -> None:
    """A sync check blocked on an Event: one run, ``timeout`` for every probe meanwhile.

    The concurrent probes share the one run and all report ``timeout`` when its
    timeout passes; later probes are answered ``timeout`` at once, naming the run
    still going, and start nothing (no pile of blocked threads). Once it is released
    and its thread ends, the next probe runs the check again. The cache is 0: not
    what holds the runs back.
    """
    release = threading.Event()
    starts = Tally()
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")

    @health_check(built.hangs)
    def hangs(value: str) -> None:
        starts.count("hangs")
        release.wait(30)  # never set while the test probes it hung

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        first = await probe(lifecycle, 20)
        assert {(r.status, r.error) for r in first} == {("timeout", "did not finish within 0.05 s")}
        later = await probe(lifecycle, 20)
        assert {r.status for r in later} == {"timeout"}
        for result in later:
            assert result.error is not None
            assert "still running after" in result.error
            assert result.error.endswith("so not started again until it ends")
        assert starts.runs == {"hangs": 1}

        release.set()
        assert (await first_ok(lifecycle)).check is not None
        assert starts.runs == {"hangs": 2}
    finally:
        release.set()
        assert await lifecycle.stop(5) == []


async def test_a_hung_async_check_that_ignores_cancellation_is_not_started_again() -> None:
    """An async check waiting on an asyncio.Event and ignoring its cancellation.

    Its timeout cancels it, but it goes on waiting: probes report ``timeout`` and
    start nothing while it runs. Released, it ends, and the next probe runs it again.
    """
    release = asyncio.Event()
    starts = Tally()
    cancelled: list[str] = []
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")

    @health_check(built.hangs)
    async def hangs(value: str) -> None:
        starts.count("hangs")
        while not release.is_set():  # never set while the test probes it hung
            try:
                await release.wait()
            except asyncio.CancelledError:  # a check that will not stop
                cancelled.append("ignored")

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        first = await probe(lifecycle, 20)
        assert {(r.status, r.error) for r in first} == {("timeout", "did not finish within 0.05 s")}
        await until(lambda: cancelled == ["ignored"], "the check is cancelled at its timeout")
        later = await probe(lifecycle, 20)
        assert {r.status for r in later} == {"timeout"}
        assert all("still running after" in str(r.error) for r in later)
        assert starts.runs == {"hangs": 1}

        release.set()
        await first_ok(lifecycle)
        assert starts.runs == {"hangs": 2}
    finally:
        release.set()
        assert await lifecycle.stop(5) == []


async def test_a_hung_async_check_is_cancelled_at_its_timeout_and_runs_again_later() -> None:
    """An async check waiting on an asyncio.Event never set: one run for concurrent probes.

    They all report ``timeout``; the run is cancelled then (it no longer hangs), so a
    later probe starts a new run: a check of a service that recovers can pass again.
    """
    never = asyncio.Event()
    starts = Tally()
    cancelled: list[int] = []
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")

    @health_check(built.hangs)
    async def hangs(value: str) -> None:
        starts.count("hangs")
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        first = await probe(lifecycle, 20)
        assert {r.status for r in first} == {"timeout"}
        await until(lambda: len(cancelled) == 1, "the run is cancelled")
        assert starts.runs == {"hangs": 1}
        [again] = await probe(lifecycle, 1)
        assert (again.status, again.error) == ("timeout", "did not finish within 0.05 s")
        assert starts.runs == {"hangs": 2}
        await until(lambda: len(cancelled) == 2, "the second run is cancelled")
    finally:
        assert await lifecycle.stop(5) == []


async def test_a_probe_with_a_shorter_timeout_stops_waiting_for_the_shared_run() -> None:
    """Each probe waits within its own timeout; the run goes on for the others."""
    release = asyncio.Event()
    starts = Tally()
    built = containers.DynamicContainer()
    built.slow = providers.Resource(_yield, "slow")

    @health_check(built.slow)
    async def slow(value: str) -> None:
        starts.count("slow")
        await release.wait()  # set by the test once the impatient probe gave up

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        patient = asyncio.ensure_future(run_checks(lifecycle, 30))
        await until(lambda: waiting(lifecycle) == 1, "the first probe waiting")
        [impatient] = await run_checks(lifecycle, 0.05)
        assert (impatient.status, impatient.error) == ("timeout", "did not finish within 0.05 s")
        release.set()
        [result] = await patient
        assert result.ok
        assert starts.runs == {"slow": 1}
    finally:
        release.set()
        assert await lifecycle.stop(5) == []


# -- what the runs belong to -------------------------------------------------------------------


async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_the_runs_of_a_lifecycle_go_with_it() -> None:
    """The shared runs and cached results live with their lifecycle, not in the process."""
    built = containers.DynamicContainer()
    built.http = providers.Resource(http_client)  # the default check: no declaration
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    [result] = await run_checks(lifecycle, 1, cache=3600)
    assert result.check == "httpx.AsyncClient: not closed"
    assert await lifecycle.stop(5) == []
    assert lifecycle in health._monitors
    gone = weakref.ref(lifecycle)
    del lifecycle, built
    gc.collect()
    assert gone() is None


async def test_an_open_value_that_is_a_task_is_checked_never_awaited() -> None:
    """A resource yielding a background task: the probe neither awaits nor cancels it."""
    never = asyncio.Event()

    async def open_worker() -> AsyncIterator[asyncio.Task[bool]]:
        task = asyncio.create_task(never.wait())
        yield task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    class Background(containers.DeclarativeContainer):
        worker = providers.Resource(open_worker)

    lifecycle = ResourceLifecycle(Background())
    assert await lifecycle.start() == []
    try:
        [result] = await run_checks(lifecycle, 0.5)
        task = lifecycle.current("worker")
        assert isinstance(task, asyncio.Task)
        assert not task.done()
        assert result.status == "ok"
    finally:
        assert await lifecycle.stop(5.0) == []
