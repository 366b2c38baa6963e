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
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Final

from lifespan_container.engine.drive import aexit, drive_kind, enter_sync, exit_sync, open_value
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


class Opened:
    """One value a scope opened: its name, and what closes it."""

    __slots__ = ("closer", "is_async", "name", "thread")

    def __init__(self, name: str, closer: object, *, is_async: bool) -> None:
        self.name = name
        self.closer = closer
        """The generator or the entered context manager."""
        self.is_async = is_async
        self.thread = threading.get_ident()


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

    async def open(self, key: object, name: str, initial: object) -> object:
        """Open what ``key``'s initializer returned (on this loop) and remember it."""
        if self.async_refused and drive_kind(initial) == "async":
            if inspect.iscoroutine(initial):
                initial.close()
            msg = f"The request-scoped resource {name!r} is async: {self.async_refused}"
            raise RequestScopeError(msg)
        started = time.perf_counter()
        try:
            value, closer, is_async = await open_value(initial)
        except BaseException as exc:
            _report(name, "start", "failed", started, self.label, error=exc)
            raise
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
        if self.closed:  # opened by work that outlived the request: close it at once
            self.opened.append(Opened(name, closer, is_async=is_async))
            msg = f"The request ({self.label}) ended while {name!r} was opening."
            raise RequestScopeError(msg)
        self.values[key] = value
        if closer is not None:
            self.opened.append(Opened(name, closer, is_async=is_async))
        _report(name, "start", "ok", started, self.label)

    @property
    def all_sync(self) -> bool:
        """Whether every value to close is synchronous."""
        return not any(opened.is_async for opened in self.opened)

    async def aclose(
        self, error: BaseException | None, timeout: Limit, call_sync: CallSync
    ) -> None:
        """Close every opened value, newest first, each passed ``error``; never raises.

        Each async close is bounded by ``timeout`` (then cancelled, so its ``finally``
        still runs); consecutive sync closes run in one ``call_sync`` call, waited for
        at most ``timeout``. Failures and hangs are logged with the resource's name
        and the request's label.
        """
        self.closed = True
        opened, self.opened = self.opened, []
        self.values.clear()
        index = len(opened)
        while index:
            index -= 1
            entry = opened[index]
            if entry.is_async:
                error = await self._close_async(entry, error, timeout)
                continue
            batch = [entry]
            while index and not opened[index - 1].is_async:
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
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        expiry = _Expiry()
        timer = loop.call_later(timeout.seconds, expiry.fire, task)
        try:
            await aexit(entry.closer, error)
        except asyncio.CancelledError as exc:
            if not expiry.fired or task is None or task.uncancel() > 0:
                raise  # the request itself is cancelled: not ours to swallow
            _report(
                entry.name, "stop", "cancelled", started, self.label, error=exc, timeout=timeout
            )
            return error
        except Exception as exc:  # noqa: BLE001 (logged; the next close sees it)
            expiry.withdraw(task)
            _report(entry.name, "stop", "failed", started, self.label, error=exc)
            return exc
        finally:
            timer.cancel()
        expiry.withdraw(task)
        _report(entry.name, "stop", "ok", started, self.label)
        return error

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
                    entry.name,
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
            exit_sync(entry.closer, error)
        except Exception as exc:  # noqa: BLE001 (logged; the next close sees it)
            _report(entry.name, "stop", "failed", started, self.label, error=exc)
            return exc
        _report(entry.name, "stop", "ok", started, self.label)
        return error


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
