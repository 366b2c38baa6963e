"""Resources that live for one request: opened on first use, closed after the response.

A :class:`RequestScope` belongs to one request. The layer that serves the request
makes it current (:data:`current`), opens what the request needs through
:meth:`RequestScope.open` and, once the response is really done, closes it with
:meth:`RequestScope.aclose` (or :meth:`RequestScope.close_sync` where every value
is synchronous and no event loop runs): in reverse order of opening, each close
passed the exception the request ended with, as :class:`contextlib.ExitStack`
would. How each kind of value opens and closes is :mod:`.drive`'s.

No value is awaited, entered or closed on another event loop than the one that
opened it: async values are driven on the loop that serves the request; sync
ones wherever the caller's ``call_sync`` runs them (the view's thread).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from types import AsyncGeneratorType
from typing import Any, Final

from lifespan_container.engine.drive import (
    Resume,
    close_step,
    did_not_yield,
    drive_kind,
    enter_sync,
    exit_sync,
    open_value,
    yielded_twice,
)
from lifespan_container.engine.events import fields, logger
from lifespan_container.engine.limits import Limit
from lifespan_container.exceptions import RequestScopeError

__all__ = ["CallSync", "Opened", "RequestScope", "current", "drive_kind"]

current: Final[ContextVar[RequestScope | None]] = ContextVar(
    "lifespan_container_request_scope", default=None
)
"""The scope of the request being served in this context, if any."""

CallSync = Callable[[Callable[[], None]], Awaitable[None]]
"""Runs a sync callable where sync values of the request live (the view's thread)."""


Opened = tuple[str, Any, bool]
"""One value a scope opened: its name, what closes it (the generator or the entered
context manager), and whether that closer is async. A plain tuple: one per request
resource per request."""


class RequestScope:
    """The request-scoped values of one request, and how to close them.

    ``label`` names the request in log records and errors (its path);
    ``request`` is the request object itself, for ``CurrentRequest``.
    """

    __slots__ = (
        "async_refused",
        "closed",
        "completed",
        "error",
        "label",
        "opened",
        "request",
        "values",
    )

    def __init__(self, request: object = None, label: str = "") -> None:
        self.request = request
        self.label = label
        self.values: dict[object, object] = {}
        """Each opened provider -> its value (the same for the whole request)."""
        self.opened: list[Opened] = []
        self.error: BaseException | None = None
        """The first exception the request failed with; thrown into each close."""
        self.completed = False
        """Whether the whole response was sent (a disconnect before that is a failure)."""
        self.closed = False
        self.async_refused = ""
        """Why async values cannot be opened in this scope, if they cannot."""

    def fail(self, error: BaseException) -> None:
        """Remember that the request failed with ``error`` (the first one wins)."""
        if self.error is None:
            self.error = error

    def value(self, key: object, name: str) -> object:
        """The open value of ``key``; a clear error once the scope is closed."""
        try:
            return self.values[key]
        except KeyError:
            pass
        if self.closed:
            msg = (
                f"The request-scoped resource {name!r} was used after its request "
                f"({self.label or 'a request'}) ended and its resources were closed: a task "
                "or a thread the view started outlived the request. Give such work a scope "
                "of its own (lifespan_container.request_scope())."
            )
        else:
            msg = f"The request-scoped resource {name!r} is not open in this request."
        raise RequestScopeError(msg)

    async def open_generator(self, key: object, name: str, generator: Any) -> object:
        """:meth:`open` for an async generator, nearly every request resource: inlined."""
        if self.async_refused or self.closed:
            return await self.open(key, name, generator)
        started = time.perf_counter()
        try:
            value = await generator.__anext__()
        except StopAsyncIteration:
            failure = did_not_yield(generator)
            _report(name, "start", "failed", started, self.label, error=failure)
            raise failure from None
        except BaseException as exc:
            _report(name, "start", "failed", started, self.label, error=exc)
            raise
        if self._ended():  # the request ended while it opened: closed at once
            await self._close_async((name, generator, True), None, _LATE)
            raise _ended(self.label, name)
        self.values[key] = value
        self.opened.append((name, generator, True))
        if logger.isEnabledFor(logging.DEBUG):
            _report(name, "start", "ok", started, self.label)
        return value

    def _ended(self) -> bool:
        """Whether the scope was closed (read again after an ``await``)."""
        return self.closed

    async def open(self, key: object, name: str, initial: object) -> object:
        """Open what ``key``'s initializer returned (on this loop) and remember it."""
        started = time.perf_counter()
        if self.async_refused and drive_kind(initial) == "async":
            if inspect.iscoroutine(initial):
                initial.close()
            msg = f"The request-scoped resource {name!r} is async: {self.async_refused}"
            raise RequestScopeError(msg)
        try:
            value, closer, is_async = await open_value(initial)
        except BaseException as exc:
            _report(name, "start", "failed", started, self.label, error=exc)
            raise
        if self.closed:  # opened by work that outlived its request: closed at once
            late = (name, closer, is_async)
            if is_async:
                await self._close_async(late, None, _LATE)
            else:
                self._close_one_sync(late, None)
            raise _ended(self.label, name)
        self._keep(key, name, value, closer, is_async=is_async, started=started)
        return value

    def open_sync(self, key: object, name: str, initial: object) -> object:
        """Open what ``key``'s initializer returned, in this thread, and remember it.

        ``initial`` must be of a sync kind (see :func:`drive_kind`).
        """
        started = time.perf_counter()
        try:
            value, closer = enter_sync(initial)
        except BaseException as exc:
            _report(name, "start", "failed", started, self.label, error=exc)
            raise
        if self.closed:  # opened by work that outlived its request: closed at once
            self._close_one_sync((name, closer, False), None)
            raise _ended(self.label, name)
        self._keep(key, name, value, closer, is_async=False, started=started)
        return value

    def _keep(  # noqa: PLR0913 (what one opened value is)
        self,
        key: object,
        name: str,
        value: object,
        closer: object,
        *,
        is_async: bool,
        started: float,
    ) -> None:
        self.values[key] = value
        if closer is not None:
            self.opened.append((name, closer, is_async))
        if logger.isEnabledFor(logging.DEBUG):
            _report(name, "start", "ok", started, self.label)

    @property
    def all_sync(self) -> bool:
        """Whether every value to close is synchronous."""
        return not any(is_async for _, _, is_async in self.opened)

    async def aclose(
        self, error: BaseException | None, timeout: Limit, call_sync: CallSync
    ) -> None:
        """Close every opened value, newest first, each passed ``error``; never raises.

        Each async close is bounded by ``timeout`` (then cancelled, so its ``finally``
        still runs); consecutive sync closes run in one ``call_sync`` call, waited for
        at most ``timeout``. Failures and hangs are logged with the resource's name
        and the request's label.
        """
        rest = self.close_now(error, timeout, call_sync)
        if rest is not None:
            await rest

    def close_now(
        self, error: BaseException | None, timeout: Limit, call_sync: CallSync
    ) -> Coroutine[Any, Any, None] | None:
        """:meth:`aclose`, as far as it goes without waiting; what is left to await.

        An async generator that finishes without waiting (a commit that does not
        wait, a value with nothing to release) is closed here and now; ``None`` when
        everything was. The rest, from the first close that waits, is the
        coroutine returned.
        """
        self.closed = True
        opened, self.opened = self.opened, []
        self.values.clear()
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
                    _report(entry[0], "stop", "ok", started, self.label)
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
        if not index:
            return None
        return self._close_all(opened[:index], error, timeout, call_sync)

    async def _close_from(
        self,
        opened: list[Opened],
        waiting: Coroutine[Any, Any, BaseException | None],
        timeout: Limit,
        call_sync: CallSync,
    ) -> None:
        """Finish the close that waits, then close ``opened``, newest first."""
        error = await waiting
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
            if entry[2]:
                error = await self._close_async(entry, error, timeout)
                continue
            batch = [entry]
            while index and not opened[index - 1][2]:
                index -= 1
                batch.append(opened[index])
            error = await self._close_sync_batch(batch, error, timeout, call_sync)

    def close_sync(self, error: BaseException | None) -> None:
        """Close every opened value in this thread, newest first; never raises.

        For scopes whose values are all synchronous (see :attr:`all_sync`), where
        no event loop serves the request (Django's test ``Client``, WSGI).
        """
        self.closed = True
        opened, self.opened = self.opened, []
        self.values.clear()
        for entry in reversed(opened):
            error = self._close_one_sync(entry, error)

    async def _close_async(
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
            _report(
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
        if not isinstance(exc, Exception):
            raise exc  # the request itself is cancelled, or the process exits
        _report(entry[0], "stop", "failed", started, self.label, error=exc)
        return exc

    async def _returned(
        self, entry: Opened, error: BaseException | None, started: float
    ) -> BaseException | None:
        """The close's step returned: fine for a context manager, not for a generator."""
        if isinstance(entry[1], AsyncGeneratorType):  # it yielded again
            failure = yielded_twice(entry[1])
            await entry[1].aclose()
            _report(entry[0], "stop", "failed", started, self.label, error=failure)
            return failure
        return self._closed(entry, error, started)

    def _closed(
        self, entry: Opened, error: BaseException | None, started: float
    ) -> BaseException | None:
        if logger.isEnabledFor(logging.DEBUG):
            _report(entry[0], "stop", "ok", started, self.label)
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
                outcome[0] = self._close_one_sync(entry, outcome[0])

        started = time.perf_counter()
        waiting = asyncio.ensure_future(call_sync(close_all))
        done, _ = await asyncio.wait({waiting}, timeout=timeout.seconds)
        if not done:
            # A thread cannot be cancelled: it closes the rest when the hung close returns.
            for entry in batch:
                _report(
                    entry[0],
                    "stop",
                    "cancelled",
                    started,
                    self.label,
                    error=None,
                    timeout=timeout,
                )
            waiting.add_done_callback(_retrieve)
        return outcome[0]

    def _close_one_sync(self, entry: Opened, error: BaseException | None) -> BaseException | None:
        started = time.perf_counter()
        try:
            exit_sync(entry[1], error)
        except Exception as exc:  # noqa: BLE001 (logged; the next close sees it)
            _report(entry[0], "stop", "failed", started, self.label, error=exc)
            return exc
        _report(entry[0], "stop", "ok", started, self.label)
        return error


_YIELDED_AGAIN: Final = object()
"""What the first step of a generator's close "waits for" when the generator yielded."""

_LATE: Final = Limit(1.0, "closing a value opened after its request ended (1 s)")


def _ended(label: str, name: str) -> RequestScopeError:
    return RequestScopeError(
        f"The request ({label or 'a request'}) ended while {name!r} was opening: it was "
        "closed at once. Work that outlives its request needs a scope of its own "
        "(lifespan_container.request_scope())."
    )


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


_MESSAGES: Final = {
    ("start", "ok"): (logging.DEBUG, "Opened request-scoped resource %r for %s in %.2f ms."),
    ("stop", "ok"): (logging.DEBUG, "Closed request-scoped resource %r for %s in %.2f ms."),
    ("start", "failed"): (
        logging.ERROR,
        "Request-scoped resource %r failed to open for %s after %.2f ms.",
    ),
    ("stop", "failed"): (
        logging.ERROR,
        "Request-scoped resource %r failed to close for %s after %.2f ms.",
    ),
    ("stop", "cancelled"): (
        logging.ERROR,
        (
            "Closing request-scoped resource %r for %s did not finish in %.2f ms, the "
            "limit %s: given up."
        ),
    ),
}


def _report(  # noqa: PLR0913 (one record, all its parts)
    name: str,
    action: str,
    outcome: str,
    started: float,
    label: str,
    *,
    error: BaseException | None = None,
    timeout: Limit | None = None,
) -> None:
    level, message = _MESSAGES[action, outcome]
    if not logger.isEnabledFor(level):
        return
    duration = time.perf_counter() - started
    args: tuple[object, ...] = (name, label or "a request", duration * 1000)
    if timeout is not None:
        args = (*args, timeout)
    extra = fields(name, action, outcome, duration)
    extra["request"] = label
    extra["scope"] = "request"
    logger.log(level, message, *args, exc_info=error, extra=extra)
