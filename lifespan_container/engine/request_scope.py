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
import operator
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Final, TypeVar

from lifespan_container.engine.drive import (
    Resume,
    did_not_yield,
    drive_kind,
    drop,
    enter_sync,
    open_value,
)
from lifespan_container.engine.events import logger, report_request
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.request_close import CallSync, Closes, Opened
from lifespan_container.exceptions import RequestScopeError

__all__ = ["CallSync", "Opened", "RequestScope", "current", "drive_kind"]

T = TypeVar("T")

current: Final[ContextVar[RequestScope | None]] = ContextVar(
    "lifespan_container_request_scope", default=None
)
"""The scope of the request being served in this context, if any."""


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
        "opening",
        "request",
        "sync_thread",
        "values",
        "worker",
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
        self.opening: dict[object, asyncio.Future[object]] | None = None
        """The values being opened, for another task of the request that asks too."""
        self.sync_thread: int | None = None
        """The thread the sync values were opened in (the view's)."""
        self.worker: asyncio.Task[Any] | None = None
        """The task running the request's view, when it is not the one that closes the
        scope: a request cancelled from outside waits for it before closing."""

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
        """:meth:`open` for an async generator, nearly every request resource.

        Its first step runs at once: a generator that yields without waiting costs no
        more. One that waits is registered, so that another task of the same request
        asking for it meanwhile gets the same value.
        """
        if self.async_refused or self.closed or self.opening:
            return await self.open(key, name, generator)
        started = time.perf_counter()
        step = generator.__anext__()
        try:
            pending = step.send(None)
        except StopIteration as stop:  # yielded without waiting
            value = stop.value
        except StopAsyncIteration:
            failure = did_not_yield(generator)
            report_request(name, "start", "failed", started, self.label, error=failure)
            raise failure from None
        except BaseException as exc:
            report_request(name, "start", "failed", started, self.label, error=exc)
            raise
        else:
            value = await self._opening(key, name, Resume(step, pending), started)
        if self._ended():  # the request ended while it opened: closed at once
            await _close_late(self.label, (name, generator, True))
            raise _ended(self.label, name)
        self.values[key] = value
        self.opened.append((name, generator, True))
        if logger.isEnabledFor(logging.DEBUG):
            report_request(name, "start", "ok", started, self.label)
        return value

    async def _opening(
        self,
        key: object,
        name: str,
        opening: Awaitable[T],
        started: float,
        value_of: Callable[[T], object] = lambda result: result,
    ) -> T:
        """Await ``opening``, registered as the open of ``key`` under way.

        Another task asking for ``key`` meanwhile gets ``value_of`` its result.
        """
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        if self.opening is None:
            self.opening = {}
        self.opening[key] = future
        try:
            result = await opening
        except StopAsyncIteration:
            failure = did_not_yield(opening)
            report_request(name, "start", "failed", started, self.label, error=failure)
            future.set_exception(failure)
            raise failure from None
        except asyncio.CancelledError:
            future.cancel()
            report_request(name, "start", "cancelled", started, self.label)
            raise
        except BaseException as exc:
            future.set_exception(exc)
            report_request(name, "start", "failed", started, self.label, error=exc)
            raise
        finally:
            del self.opening[key]
            if not self.opening:
                self.opening = None
        future.set_result(value_of(result))
        return result

    async def _opened_elsewhere(self, key: object) -> object | None:
        """The value of ``key`` once another task of the request opened it, if it is."""
        if key in self.values:
            return self.values[key]
        future = self.opening.get(key) if self.opening else None
        if future is None:
            return _NOT_OPENING
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                return _NOT_OPENING  # the task opening it was cancelled, not this one
            raise

    def _ended(self) -> bool:
        """Whether the scope was closed (read again after an ``await``)."""
        return self.closed

    async def open(self, key: object, name: str, initial: object) -> object:
        """Open what ``key``'s initializer returned (on this loop) and remember it.

        If another task of the request is opening ``key``, its value is awaited and
        ``initial`` is dropped unopened.
        """
        elsewhere = await self._opened_elsewhere(key)
        if elsewhere is not _NOT_OPENING:
            drop(initial)
            return elsewhere
        started = time.perf_counter()
        if self.async_refused and drive_kind(initial) == "async":
            if inspect.iscoroutine(initial):
                initial.close()
            msg = f"The request-scoped resource {name!r} is async: {self.async_refused}"
            raise RequestScopeError(msg)
        value, closer, is_async = await self._opening(
            key, name, open_value(initial), started, value_of=operator.itemgetter(0)
        )
        if self.closed:  # opened by work that outlived its request: closed at once
            await _close_late(self.label, (name, closer, is_async))
            raise _ended(self.label, name)
        self._keep(key, name, value, closer, is_async=is_async, started=started)
        return value

    def open_sync(self, key: object, name: str, initial: object) -> object:
        """Open what ``key``'s initializer returned, in this thread, and remember it.

        ``initial`` must be of a sync kind (see :func:`drive_kind`).
        """
        if key in self.values:  # another task of the request opened it meanwhile
            return self.values[key]
        started = time.perf_counter()
        try:
            value, closer = enter_sync(initial)
        except BaseException as exc:
            report_request(name, "start", "failed", started, self.label, error=exc)
            raise
        if self.closed:  # opened by work that outlived its request: closed at once
            Closes(self.label).close_one_sync((name, closer, False), None)
            raise _ended(self.label, name)
        self.sync_thread = threading.get_ident()
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
            report_request(name, "start", "ok", started, self.label)

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
        return Closes(self.label).now(opened, error, timeout, call_sync)

    def close_sync(self, error: BaseException | None) -> None:
        """Close every opened value in this thread, newest first; never raises.

        For scopes whose values are all synchronous (see :attr:`all_sync`), where
        no event loop serves the request (Django's test ``Client``, WSGI).
        """
        self.closed = True
        opened, self.opened = self.opened, []
        self.values.clear()
        Closes(self.label).in_this_thread(opened, error)


async def _close_late(label: str, entry: Opened) -> None:
    """Close a value opened after its request ended; what the close met is raised."""
    closes = Closes(label)
    if entry[2]:
        await closes.close_async(entry, None, _LATE)
    else:
        closes.close_one_sync(entry, None)
    if closes.raised is not None:
        raise closes.raised


_NOT_OPENING: Final = object()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # waited for or not, an error is not "never retrieved"


_LATE: Final = Limit(1.0, "closing a value opened after its request ended (1 s)")


def _ended(label: str, name: str) -> RequestScopeError:
    return RequestScopeError(
        f"The request ({label or 'a request'}) ended while {name!r} was opening: it was "
        "closed at once. Work that outlives its request needs a scope of its own "
        "(lifespan_container.request_scope())."
    )
