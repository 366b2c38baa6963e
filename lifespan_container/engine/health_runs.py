"""Runs of health checks: shared while they run, reused for a while, always bounded.

While a check of a resource runs, every other probe of it waits for that run's
result instead of starting another, and a result may be reused for ``cache``
seconds after. Whatever a check raises, ``SystemExit`` and ``CancelledError``
included, is that run's ``failing`` outcome: a check never takes the probe, nor
the server, down.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from asgiref.sync import iscoroutinefunction

from lifespan_container._redact import describe_error
from lifespan_container.engine.graph import is_async_result

if TYPE_CHECKING:
    from collections.abc import Callable

    from lifespan_container.engine.health_checks import Check

__all__ = ["Monitor", "Outcome", "Status", "being_cancelled", "describe"]

Status = Literal["ok", "failing", "timeout", "not open"]


def being_cancelled() -> bool:
    """Whether the current task is being cancelled.

    As opposed to code raising ``CancelledError`` of its own accord.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Outcome(NamedTuple):
    """How one run of a check ended: its status, what went wrong, how long it took."""

    status: Status
    error: str | None
    latency: float


class Monitor:
    """The runs of one lifecycle's checks: shared while they run, reused for a while.

    Keyed by (check, id of the resource value), and only ever matched to the very
    same value object (a run holds it, so its id cannot be reused meanwhile) in the
    same event loop.
    """

    def __init__(self) -> None:
        self._runs: dict[tuple[Callable[[Any], Any], int], _Run] = {}

    def run(self, check: Check, value: object, seconds: float, cache: float) -> _Run:
        """The run whose result a probe of ``check`` on ``value`` gets.

        The one going on, or one that ended within the last ``cache`` seconds, or
        a new one.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        for key, old in list(self._runs.items()):
            if not old.busy and not old.fresh(now, cache):
                self._runs.pop(key, None)
        key = (check.function, id(value))
        run = self._runs.get(key)
        if run is not None and run.value is value and run.loop is loop:
            return run  # busy (running, or hung past its timeout) or fresh
        run = _Run(check, value, seconds, loop, self._forget)
        self._runs[key] = run
        return run

    def _forget(self, run: _Run) -> None:
        """Drop ``run`` once its code ended, unless its result may be reused."""
        key = (run.function, id(run.value))
        if run.ended_at is None and self._runs.get(key) is run:
            self._runs.pop(key, None)


class _Run:
    """One run of a check on one resource value, shared by every probe waiting for it.

    Its outcome is settled when the check ends, or at its deadline (``timeout``;
    an async check is cancelled then). It is busy until the check's code has
    actually ended: a sync check's thread, or an async check that ignores its
    cancellation, may run past the deadline.
    """

    def __init__(
        self,
        check: Check,
        value: object,
        seconds: float,
        loop: asyncio.AbstractEventLoop,
        forget: Callable[[_Run], None],
    ) -> None:
        self.function = check.function
        self.value = value
        self.seconds = seconds
        self.loop = loop
        self.started = loop.time()
        self.deadline = self.started + seconds
        self.outcome: asyncio.Future[Outcome] = loop.create_future()
        self.ended_at: float | None = None
        """When the check ended within its time (its outcome may then be reused)."""
        self.waiters = 0
        """Probes waiting for the outcome now."""
        self._forget = forget
        self._parts = 1  # the task; and, for a sync check, its thread
        self._task = loop.create_task(self._execute(), name=f"health check {check.label}")
        self._expiry = loop.call_at(self.deadline, self._expire)

    @property
    def busy(self) -> bool:
        """Whether the check's code is still running (possibly past its deadline)."""
        return self._parts > 0

    def fresh(self, now: float, cache: float) -> bool:
        """Whether the outcome may be reused at ``now`` by a probe allowing ``cache`` s."""
        return self.ended_at is not None and now - self.ended_at < cache

    async def result(self, seconds: float) -> Outcome:
        """The outcome, waiting for it at most until the run's deadline or ``seconds``."""
        now = self.loop.time()
        if self.outcome.done():
            outcome = self.outcome.result()
            if outcome.status == "timeout" and self.busy:
                age = now - self.started
                error = (
                    f"did not finish within {self.seconds:g} s; still running after "
                    f"{age:.1f} s, so not started again until it ends"
                )
                return Outcome("timeout", error, age)
            return outcome
        own_deadline = now + seconds
        self.waiters += 1
        try:
            if own_deadline >= self.deadline:  # the run's deadline settles the outcome
                return await asyncio.shield(self.outcome)
            try:
                async with asyncio.timeout_at(own_deadline):
                    return await asyncio.shield(self.outcome)
            except TimeoutError:
                elapsed = self.loop.time() - self.started
                return Outcome("timeout", f"did not finish within {seconds:g} s", elapsed)
        finally:
            self.waiters -= 1

    def _settle(self, status: Status, error: str | None, latency: float) -> bool:
        if self.outcome.done():
            return False
        self.outcome.set_result(Outcome(status, error, latency))
        return True

    def _expire(self) -> None:
        elapsed = max(self.loop.time() - self.started, self.seconds)
        if self._settle("timeout", f"did not finish within {self.seconds:g} s", elapsed):
            self._task.cancel()  # an async check stops; a thread is left to end on its own

    def _part_ended(self) -> None:
        self._parts -= 1
        if self._parts == 0:
            self._forget(self)

    async def _execute(self) -> None:
        try:
            status, error = await self._call()
            ended = self.loop.time()
            if self._settle(status, error, ended - self.started):
                self.ended_at = ended  # in time: the outcome may be reused
        except asyncio.CancelledError:  # by _expire (settled), or the loop is closing
            self._settle("failing", "the check was cancelled", self.loop.time() - self.started)
            raise
        finally:
            self._expiry.cancel()
            self._part_ended()

    async def _call(self) -> tuple[Status, str | None]:
        """Run the check: its status and what went wrong. Raises only when cancelled."""
        try:
            if iscoroutinefunction(self.function):
                passed = await self.function(self.value)
            else:
                passed, error = await self._in_thread()
                if error is not None:
                    return "failing", error
                if is_async_result(passed):
                    passed = await passed
        except asyncio.CancelledError as exc:
            if being_cancelled():
                raise
            return "failing", describe(exc)  # the check's own, not a cancellation
        except BaseException as exc:  # noqa: BLE001 (SystemExit, KeyboardInterrupt... fail it)
            return "failing", describe(exc)
        if passed is False:
            return "failing", "the check returned False"
        return "ok", None

    async def _in_thread(self) -> tuple[object, str | None]:
        """Run the sync check in a thread of its own, which a timeout leaves behind.

        A daemon thread, not the loop's default executor: a check that hangs must not
        take a worker that DNS lookups and Django need, nor keep the process alive at
        exit. What the check raises, ``SystemExit`` included, is caught in the thread
        and handed over as text: an exception such as ``SystemExit`` set on a future
        would be re-raised out of the event loop, stopping the server.
        """
        done: asyncio.Future[tuple[object, str | None]] = self.loop.create_future()
        context = contextvars.copy_context()

        def ended(outcome: tuple[object, str | None]) -> None:
            if not done.done():  # not cancelled by the deadline
                done.set_result(outcome)
            self._part_ended()

        def target() -> None:
            try:
                outcome: tuple[object, str | None] = (context.run(self.function, self.value), None)
            except BaseException as exc:  # noqa: BLE001 (reported, never re-raised)
                outcome = (None, describe(exc))
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self.loop.call_soon_threadsafe(ended, outcome)

        thread = threading.Thread(target=target, name="lifespan-health-check", daemon=True)
        self._parts += 1
        try:
            thread.start()
        except BaseException:
            self._parts -= 1
            raise
        return await done


def describe(error: BaseException) -> str:
    """``Type: message`` with credentials masked; never raises (a ``__str__`` may)."""
    try:
        return describe_error(error)
    except Exception:  # noqa: BLE001
        return type(error).__name__
