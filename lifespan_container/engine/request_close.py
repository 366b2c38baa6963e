"""Closing one request's values: newest first, each passed the failure, each bounded.

:class:`Closes` does what :meth:`.request_scope.RequestScope.aclose` promises. The
first step of each async close runs at once: most closes (a commit, a connection
given back to its pool) finish in it and cost no timer. A close that waits is
resumed by the event loop under ``timeout``, then cancelled (its ``finally``
blocks run); consecutive sync closes run in one ``call_sync`` call, waited for
at most ``timeout``. Every failure or hang is logged with the resource's name
and the request's label, and the exception passed on, as ``ExitStack`` would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import AsyncGeneratorType
from typing import Any, Final

from lifespan_container.engine.drive import Resume, close_step, exit_sync, yielded_twice
from lifespan_container.engine.events import logger, report_request
from lifespan_container.engine.limits import Limit

__all__ = ["CallSync", "Closes", "Opened"]

CallSync = Callable[[Callable[[], None]], Awaitable[None]]
"""Runs a sync callable where sync values of the request live (the view's thread)."""

Opened = tuple[str, Any, bool]
"""One value a scope opened: its name, what closes it (the generator or the entered
context manager), and whether that closer is async. A plain tuple: one per request
resource per request."""


class Closes:
    """The closing of the values of the request named ``label``."""

    __slots__ = ("label", "raised")

    def __init__(self, label: str) -> None:
        self.label = label
        self.raised: BaseException | None = None
        """A cancellation (or ``KeyboardInterrupt``...) met while closing: the older
        values are still closed, passed it, and it is raised at the end."""

    def now(
        self,
        opened: list[Opened],
        error: BaseException | None,
        timeout: Limit,
        call_sync: CallSync,
    ) -> Coroutine[Any, Any, None] | None:
        """:meth:`aclose`, as far as it goes without waiting; what is left to await.

        An async generator that finishes without waiting (a commit that does not
        wait, a value with nothing to release) is closed here and now; ``None`` when
        everything was. The rest, from the first close that waits, is the
        coroutine returned.
        """
        debug = logger.isEnabledFor(logging.DEBUG)
        index = len(opened)
        while index:
            entry = opened[index - 1]
            closer = entry[1]
            if type(closer) is not AsyncGeneratorType:
                break
            index -= 1
            started = time.perf_counter()
            step = closer.__anext__() if error is None else closer.athrow(error)
            try:
                pending = step.send(None)
            except StopAsyncIteration:  # finished: closed
                if debug:
                    report_request(entry[0], "stop", "ok", started, self.label)
                continue
            except StopIteration:  # it yielded again
                return self._close_from(
                    opened[:index], self._returned(entry, error, started), timeout, call_sync
                )
            except BaseException as exc:  # noqa: BLE001 (sorted out by _ended_with)
                error = self._ended_with(entry, error, exc, started)
                continue
            waiting = self._close_rest(
                entry, error, timeout, step=step, pending=pending, started=started
            )
            return self._close_from(opened[:index], waiting, timeout, call_sync)
        if index:
            return self._close_all(opened[:index], error, timeout, call_sync)
        if self.raised is not None:
            raise self.raised
        return None

    async def _close_from(
        self,
        opened: list[Opened],
        waiting: Coroutine[Any, Any, BaseException | None],
        timeout: Limit,
        call_sync: CallSync,
    ) -> None:
        """Finish the close that waits, then close ``opened``, newest first."""
        try:
            error = await waiting
        except GeneratorExit:
            raise
        except BaseException as exc:  # noqa: BLE001 (the older ones still close)
            self.raised = self.raised or exc
            error = exc
        await self._close_all(opened, error, timeout, call_sync)

    async def _close_all(
        self,
        opened: list[Opened],
        error: BaseException | None,
        timeout: Limit,
        call_sync: CallSync,
    ) -> None:
        index = len(opened)
        while index:
            index -= 1
            entry = opened[index]
            try:
                if entry[2]:
                    error = await self.close_async(entry, error, timeout)
                    continue
                batch = [entry]
                while index and not opened[index - 1][2]:
                    index -= 1
                    batch.append(opened[index])
                error = await self._close_sync_batch(batch, error, timeout, call_sync)
            except GeneratorExit:
                raise  # the closing coroutine itself is being closed
            except BaseException as exc:  # noqa: BLE001 (the older ones still close)
                self.raised = self.raised or exc
                error = exc
        if self.raised is not None:
            raise self.raised

    def in_this_thread(self, opened: list[Opened], error: BaseException | None) -> None:
        """Close every opened value in this thread, newest first; never raises."""
        for entry in reversed(opened):
            error = self.close_one_sync(entry, error)

    async def close_async(
        self, entry: Opened, error: BaseException | None, timeout: Limit
    ) -> BaseException | None:
        """Close one async value; return the exception the next close is passed."""
        started = time.perf_counter()
        step, pending, outcome = self._first_step(entry, error, started)
        if step is None:
            return outcome
        return await self._close_rest(
            entry, error, timeout, step=step, pending=pending, started=started
        )

    async def _close_rest(  # noqa: PLR0913 (the close, where its first step left it)
        self,
        entry: Opened,
        error: BaseException | None,
        timeout: Limit,
        *,
        step: Any,
        pending: object,
        started: float,
    ) -> BaseException | None:
        """Await the rest of a close that waits, bounded by ``timeout``."""
        try:
            await self._resume_bounded(step, pending, timeout)
        except _Expired as expired:
            report_request(
                entry[0],
                "stop",
                "cancelled",
                started,
                self.label,
                error=expired.__cause__,
                timeout=timeout,
            )
            return error
        except BaseException as exc:  # noqa: BLE001 (sorted out by _ended_with)
            return self._ended_with(entry, error, exc, started)
        return await self._returned(entry, error, started)

    def _first_step(
        self, entry: Opened, error: BaseException | None, started: float
    ) -> tuple[Any, object, BaseException | None]:
        """Take the close's first step now; only a close that waits gets a timer.

        Most closes (a commit, a connection given back to its pool) finish in it.
        ``(None, None, next error)`` when done; else ``(step, what it waits for, _)``.
        """
        step = close_step(entry[1], error)
        try:
            pending = step.send(None)
        except StopIteration:
            if isinstance(entry[1], AsyncGeneratorType):  # it yielded again
                return step, _YIELDED_AGAIN, None
            return None, None, self._closed(entry, error, started)
        except BaseException as exc:  # noqa: BLE001 (sorted out by _ended_with)
            return None, None, self._ended_with(entry, error, exc, started)
        return step, pending, None

    def _ended_with(
        self,
        entry: Opened,
        error: BaseException | None,
        exc: BaseException,
        started: float,
    ) -> BaseException | None:
        """The close raised ``exc``: finished, re-raised what it was given, or failed."""
        if isinstance(exc, StopAsyncIteration) or exc is error:
            return self._closed(entry, error, started)
        if not isinstance(exc, Exception):  # the request is cancelled, the process exits
            self.raised = self.raised or exc  # raised once the older ones closed too
        report_request(entry[0], "stop", "failed", started, self.label, error=exc)
        return exc

    async def _returned(
        self, entry: Opened, error: BaseException | None, started: float
    ) -> BaseException | None:
        """The close's step returned: fine for a context manager, not for a generator."""
        if isinstance(entry[1], AsyncGeneratorType):  # it yielded again
            failure = yielded_twice(entry[1])
            await entry[1].aclose()
            report_request(entry[0], "stop", "failed", started, self.label, error=failure)
            return failure
        return self._closed(entry, error, started)

    def _closed(
        self, entry: Opened, error: BaseException | None, started: float
    ) -> BaseException | None:
        if logger.isEnabledFor(logging.DEBUG):
            report_request(entry[0], "stop", "ok", started, self.label)
        return error

    @staticmethod
    async def _resume_bounded(step: Any, pending: object, timeout: Limit) -> None:
        """Await the rest of ``step`` for at most ``timeout``; :class:`_Expired` after it."""
        if pending is _YIELDED_AGAIN:
            return
        task = asyncio.current_task()
        expiry = _Expiry()
        timer = asyncio.get_running_loop().call_later(timeout.seconds, expiry.fire, task)
        try:
            await Resume(step, pending)
        except asyncio.CancelledError as cancelled:
            if not expiry.fired or task is None or task.uncancel() > 0:
                raise  # the request itself is cancelled: not ours to swallow
            raise _Expired from cancelled
        except BaseException:
            expiry.withdraw(task)
            raise
        finally:
            timer.cancel()
        expiry.withdraw(task)

    async def _close_sync_batch(
        self,
        batch: list[Opened],
        error: BaseException | None,
        timeout: Limit,
        call_sync: CallSync,
    ) -> BaseException | None:
        outcome: list[BaseException | None] = [error]

        def close_all() -> None:
            for entry in batch:
                outcome[0] = self.close_one_sync(entry, outcome[0])

        started = time.perf_counter()
        waiting = asyncio.ensure_future(call_sync(close_all))
        done, _ = await asyncio.wait({waiting}, timeout=timeout.seconds)
        if not done:
            # A thread cannot be cancelled: it closes the rest when the hung close returns.
            for entry in batch:
                report_request(
                    entry[0],
                    "stop",
                    "cancelled",
                    started,
                    self.label,
                    error=None,
                    timeout=timeout,
                )
            waiting.add_done_callback(_retrieve)
        elif not waiting.cancelled() and waiting.exception() is not None:
            failure = waiting.exception()  # the values could not be reached in their thread
            for entry in batch:
                report_request(entry[0], "stop", "failed", started, self.label, error=failure)
            return failure
        return outcome[0]

    def close_one_sync(self, entry: Opened, error: BaseException | None) -> BaseException | None:
        """Close one sync value in this thread; return the exception the next close is passed."""
        started = time.perf_counter()
        try:
            exit_sync(entry[1], error)
        except Exception as exc:  # noqa: BLE001 (logged; the next close sees it)
            report_request(entry[0], "stop", "failed", started, self.label, error=exc)
            return exc
        report_request(entry[0], "stop", "ok", started, self.label)
        return error


_YIELDED_AGAIN: Final = object()
"""What the first step of a generator's close "waits for" when the generator yielded."""


class _Expired(Exception):  # noqa: N818 (internal signal, never seen outside)
    """A close ran out of its time and was cancelled."""


class _Expiry:
    __slots__ = ("fired",)

    def __init__(self) -> None:
        self.fired = False

    def fire(self, task: asyncio.Task[Any] | None) -> None:
        self.fired = True
        if task is not None:
            task.cancel()

    def withdraw(self, task: asyncio.Task[Any] | None) -> None:
        """Take back a cancellation that the close swallowed."""
        if self.fired and task is not None:
            task.uncancel()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
