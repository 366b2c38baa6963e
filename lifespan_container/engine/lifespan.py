"""One lifespan of a container: its phase, its bounded startup and shutdown.

startup
    Open every resource (ordered, concurrent, all or nothing), then enter the
    lifespan managers (:mod:`~lifespan_container.engine.managers`), then run the
    receivers (the Django layer's ``asgi_startup``), together bounded by the
    startup limit. If anything fails, the time passes or the startup is
    cancelled, every entered manager is exited and every opened resource is
    closed again (bounded by the shutdown limit) and :class:`StartupFailedError`
    names each failure.

shutdown
    Run the receivers (at most half of the shutdown limit), then exit the
    managers (at most half of the time left), then close every resource with the
    time that is left, even when a receiver or a manager failed or was
    cancelled. Every failure is logged and raised together in
    :class:`ShutdownFailedError`.

Lifespans of a project with no container may overlap (nothing of theirs is bound
to an event loop): each has its own managers, and the phase is ``serving`` while
any of them serves.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from lifespan_container._redact import get_logger, redact
from lifespan_container.engine.guard import Advice
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.steps import (
    CANCEL_GRACE,
    Failure,
    Tracker,
    cancel_and_wait,
    describe,
    timed_out,
)
from lifespan_container.exceptions import ShutdownFailedError, StartupFailedError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from lifespan_container.engine.lifecycle import ResourceLifecycle
    from lifespan_container.engine.managers import LifespanManagers

    Receivers = Callable[[Tracker, Limit], Awaitable[list[Failure]]]

__all__ = ["Lifespan", "Phase"]

logger = get_logger("lifespan_container")

Phase = Literal["idle", "starting", "serving", "stopping", "stopped"]
"""Where a lifespan is: ``idle`` until a startup begins."""


class Lifespan:
    """The lifespans of one ``lifecycle`` (``None``: a project with no container)."""

    def __init__(self, lifecycle: ResourceLifecycle | None, advice: Advice | None = None) -> None:
        self.lifecycle = lifecycle
        self.advice = advice or Advice()
        self.phase: Phase = "idle"
        """``starting``, ``serving`` (startup completed), ``stopping`` (shutdown
        began), ``stopped``. Readiness is ``serving``."""
        self._serving = 0  # lifespans between a completed startup and their shutdown

    async def start(
        self,
        startup: Limit,
        shutdown: Limit,
        receivers: Receivers | None = None,
        managers: LifespanManagers | None = None,
    ) -> None:
        """Open the resources, enter ``managers``, run ``receivers``: all or nothing.

        Within ``startup``. On failure every entered manager is exited and every
        opened resource closes again within ``shutdown``, and
        :class:`StartupFailedError` is raised naming each failure.
        """
        lifecycle = self.lifecycle
        if lifecycle is not None and lifecycle.in_use:
            msg = (
                "Startup failed: the container's resources are already open, for another "
                "lifespan of this process (or left open by a shutdown that did not finish: "
                "see its log). One container serves one lifespan at a time."
            )
            msg = f"{msg} {self.advice.already_open}" if self.advice.already_open else msg
            logger.error(msg)
            raise StartupFailedError(msg)
        if not self._serving:
            self.phase = "starting"
        tracker = Tracker()
        try:
            async with asyncio.timeout(startup.seconds):
                failures = await lifecycle.start(tracker=tracker) if lifecycle else []
                if not failures and managers is not None:
                    failures = await managers.enter(tracker)
                if not failures and receivers is not None:
                    failures = await receivers(tracker, startup)
        except TimeoutError:
            # Steps report their own errors as failures: this can only be the deadline.
            failures = timed_out(tracker, startup)
        except BaseException:
            # Cancelled by the server: still close what was opened.
            try:
                await self._roll_back(shutdown, managers)
            finally:
                self._stopped()
            raise
        if not failures:
            self._serving += 1
            self.phase = "serving"
            return
        message = f"Startup failed: {describe(failures)}."
        try:
            rollback = await self._roll_back(shutdown, managers)
            if rollback:
                message += f" Closing the opened resources also failed: {describe(rollback)}."
        finally:
            self._stopped()
        logger.error(message)
        raise StartupFailedError(message, failures) from _first_error(failures)

    async def stop(
        self,
        shutdown: Limit,
        receivers: Receivers | None = None,
        managers: LifespanManagers | None = None,
    ) -> None:
        """Run ``receivers``, exit ``managers``, close the resources; never half way.

        Within ``shutdown``: ``receivers`` get at most half of it, the managers at
        most half of what is left, so that the resources always have time to close.
        """
        self._serving = max(self._serving - 1, 0)
        if not self._serving:
            self.phase = "stopping"
        tracker = Tracker()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + shutdown.seconds
        failures: list[Failure] = []
        try:
            if receivers is not None:
                failures = await _within(receivers, tracker, shutdown.share(0.5))
        finally:
            # Also when the receivers were cancelled: the resources close regardless.
            try:
                failures += await self._close(deadline, shutdown, managers, tracker)
            finally:
                self._stopped()
        if failures:
            message = f"Shutdown finished with errors: {describe(failures)}."
            logger.error(message)
            raise ShutdownFailedError(message, failures) from _first_error(failures)

    async def _roll_back(self, shutdown: Limit, managers: LifespanManagers | None) -> list[Failure]:
        """Undo a startup: exit the entered managers, close the opened resources."""
        deadline = asyncio.get_running_loop().time() + shutdown.seconds
        return await self._close(deadline, shutdown, managers, Tracker())

    async def _close(
        self,
        deadline: float,
        shutdown: Limit,
        managers: LifespanManagers | None,
        tracker: Tracker,
    ) -> list[Failure]:
        """Exit the managers (half of the time left at most), then close the resources."""
        loop = asyncio.get_running_loop()
        failures: list[Failure] = []
        try:
            if managers is not None and managers.entered:
                half = max(deadline - loop.time(), 0.0) / 2
                failures += await managers.exit(Limit(half, str(shutdown)), tracker)
        finally:
            if self.lifecycle:
                left = Limit(max(deadline - loop.time(), 0.0), str(shutdown))
                failures += await self.lifecycle.stop(left, tracker)
        return failures

    def _stopped(self) -> None:
        """A lifespan ended: ``stopped``, unless another (no container) still serves."""
        self.phase = "serving" if self._serving else "stopped"


async def _within(receivers: Receivers, tracker: Tracker, limit: Limit) -> list[Failure]:
    """Run ``receivers`` within ``limit``, which they are given to keep.

    Receivers that overrun it (past :data:`CANCEL_GRACE`, the time their own
    bounded steps take to cancel) are cancelled and reported as one failure.
    """
    task = asyncio.ensure_future(receivers(tracker, limit))
    try:
        done, _ = await asyncio.wait({task}, timeout=limit.seconds)
        if not done:  # their own bound, due now too, reports what it cut off
            done, _ = await asyncio.wait({task}, timeout=CANCEL_GRACE)
    finally:
        if not task.done():
            await cancel_and_wait([task])
    if task in done:
        return task.result()
    return [Failure("the shutdown's receivers", reason=f"did not finish within {limit}")]


def _first_error(failures: list[Failure]) -> BaseException | None:
    """The error to chain to the raised one, unless its text carries credentials.

    The server prints the chain; the library's own message and log record already
    name the error, masked.
    """
    error = next((failure.error for failure in failures if failure.error is not None), None)
    return error if error is None or redact(str(error)) == str(error) else None
