"""Django's ASGI request cycle, with the per-request thread started only when needed.

Django's ``ASGIHandler`` serves each request in a ``ThreadSensitiveContext``: the
first ``sync_to_async`` of the request starts a thread for it, which every later
sync call of the request reuses. Two calls of every request start that thread even
when nothing else would: ``request_started``'s receivers (``asend``) and
``sync_to_async(response.close)``, which sends ``request_finished``. When the
request has not started its thread, Django's own receivers of those signals have
nothing to do there or do the same in place:

- ``reset_queries`` and ``close_old_connections`` act on the database connections
  of the request's thread: a thread not started yet would be new, with none;
- ``close_caches`` closes the caches set up in the request's context: when none of
  them has a ``close`` of its own (``BaseCache.close`` does nothing; local memory,
  database, file and Redis caches keep it), it does nothing;
- ``reset_urlconf`` resets a context-local value, the same on the event loop.

:func:`serve` runs the cycle as Django does, calling the handler's own methods,
and takes those two steps in place when that holds: the sync receivers of the
signal are all in :data:`KNOWN` and their rule holds, the response (and the
request) close nothing that is not known (a ``FileResponse`` or a sync iterator
has closers: they close in the thread, as in Django). Async receivers are awaited
in either case. Anything else runs where Django runs it, and a request that starts
its thread (sync middleware, a sync view, any ``sync_to_async`` call) gets
``request_finished`` in that thread, its connections closed there, as in Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from typing import TYPE_CHECKING, Any, Final

import django
from asgiref.sync import AsyncToSync, SyncToAsync, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.cache import caches, close_caches
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, reset_queries
from django.dispatch import dispatcher
from django.http import HttpResponseBase
from django.urls import set_script_prefix
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from lifespan_container.engine.steps import qualified_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.dispatch import Signal

    from lifespan_container.engine.protocol import Receive, Scope, Send

__all__ = ["KNOWN", "Plans", "Rule", "serve", "thread_causes"]


class Rule(enum.Enum):
    """When a known receiver of ``request_started``/``request_finished`` needs no thread."""

    NO_THREAD = "does nothing while the request has started no thread"
    NO_CACHE_TO_CLOSE = "does nothing while no cache of the request has a close of its own"
    IN_PLACE = "does the same on the event loop"


KNOWN: Final[dict[Callable[..., Any], Rule]] = {
    reset_queries: Rule.NO_THREAD,
    close_old_connections: Rule.NO_THREAD,
    close_caches: Rule.NO_CACHE_TO_CLOSE,
    reset_urlconf: Rule.IN_PLACE,
}
"""Django's own receivers that the fast path knows, and why they need no thread."""

SIGNALS: Final = (signals.request_started, signals.request_finished)


class Plan:
    """How to send one signal for one sender without a thread, while its receivers stay.

    It keeps no receiver of the project's (a weak one must die with its owner):
    only their names, what the known ones need, and whether any is async.
    """

    def __init__(self, signal: Signal, sender: object) -> None:
        self.receivers = list(signal.receivers)
        sync, asynchronous = signal._live_receivers(sender)  # noqa: SLF001
        self.unknown = [qualified_name(r) for r in sync if r not in KNOWN]
        rules = [KNOWN[receiver] for receiver in sync if receiver in KNOWN]
        self.needs_no_thread = Rule.NO_THREAD in rules
        self.needs_no_caches = Rule.NO_CACHE_TO_CLOSE in rules
        # Django's own functions (they never die), in the order they were connected.
        self.in_place = [r for r in sync if KNOWN.get(r) is Rule.IN_PLACE]
        self.has_async = bool(asynchronous)

    def applies(self) -> bool:
        """Whether the signal can be sent now, without the request's thread."""
        if self.unknown:
            return False
        if self.needs_no_thread and thread_started():
            return False
        return not (self.needs_no_caches and _a_cache_closes())

    async def send(self, signal: Signal, sender: object, **named: Any) -> None:
        """The receivers, as Django's ``send`` calls them.

        The sync ones (in place) first, then the async ones together, as the installed
        Django runs them.
        """
        for receiver in self.in_place:
            receiver(signal=signal, sender=sender, **named)
        if self.has_async:  # looked up now: the plan keeps none of them alive
            _, asynchronous = signal._live_receivers(sender)  # noqa: SLF001
            if asynchronous:
                await _together(*(r(signal=signal, sender=sender, **named) for r in asynchronous))


class Plans:
    """The plan of each signal and sender, made again when its receivers change."""

    def __init__(self) -> None:
        self._plans: dict[tuple[Signal, object], Plan] = {}

    def of(self, signal: Signal, sender: object) -> Plan:
        plan = self._plans.get((signal, sender))
        if plan is None or plan.receivers != signal.receivers:
            plan = self._plans[signal, sender] = Plan(signal, sender)
        return plan

    def causes(self, sender: object) -> list[str]:
        """The receivers that make every request start its thread, named."""
        return [
            f"{signal_name(signal)} receiver {name!r}"
            for signal in SIGNALS
            for name in self.of(signal, sender).unknown
        ]


def thread_causes(sender: type) -> list[str]:
    """What makes every request served by ``sender`` (a handler class) start its thread.

    The middleware of ``settings.MIDDLEWARE`` whose code runs in it (sync-only
    middleware, and the sync hooks of Django's ``MiddlewareMixin``), and the sync
    receivers of the request signals that the fast path does not know. A sync view,
    a ``FileResponse`` or a ``sync_to_async`` call adds it to the requests that meet
    them. Empty: an async view with async code needs no thread.
    """
    causes = [
        f"middleware {path!r} {why}"
        for path in settings.MIDDLEWARE
        if (why := _why_in_thread(import_string(path)))
    ]
    return causes + Plans().causes(sender)


def _why_in_thread(middleware: Any) -> str:
    """Why Django runs ``middleware`` in the request's thread, or ``""``."""
    if not getattr(middleware, "async_capable", False):
        return "is sync-only: it runs in it"
    hooks = ["process_request", "process_response"]
    if not (isinstance(middleware, type) and issubclass(middleware, MiddlewareMixin)):
        hooks = []  # an async middleware calls its own hooks
    view = getattr(middleware, "process_view", None)
    if view is not None and not iscoroutinefunction(view):
        hooks.append("process_view")
    found = [hook for hook in hooks if hasattr(middleware, hook)]
    if not found:
        return ""
    named = found[0] if len(found) == 1 else f"{', '.join(found[:-1])} and {found[-1]}"
    return f"runs its {named} in it"


async def _together(*calls: Any) -> Any:
    """Await the async receivers as the installed Django does.

    Django 6.1 runs them in a task group sharing one context that the caller gets
    back; Django 5.2 and 6.0 with ``asyncio.gather``.
    """
    run_parallel = getattr(dispatcher, "_run_parallel", None)
    if run_parallel is not None:
        return await run_parallel(*calls)
    return await asyncio.gather(*calls)


def _a_cache_closes() -> bool:
    """Whether a cache set up in this context has a ``close`` that does something.

    Only the aliases whose backend has one are looked at (none, usually).
    """
    if not _CLOSING.backends():
        return False
    return any(type(c).close is not BaseCache.close for c in caches.all(initialized_only=True))


class _ClosingBackends:
    """Whether a configured cache backend has a ``close`` of its own, per ``CACHES``."""

    def __init__(self) -> None:
        self._seen: object = None
        self._any = False

    def backends(self) -> bool:
        configured = caches.settings
        if configured is not self._seen:  # a new CACHES (a test changed it)
            self._any = any(
                import_string(options["BACKEND"]).close is not BaseCache.close
                for options in configured.values()
            )
            self._seen = configured
        return self._any


_CLOSING: Final = _ClosingBackends()


def signal_name(signal: Signal) -> str:
    return "request_started" if signal is signals.request_started else "request_finished"


def thread_started() -> bool:
    """Whether the request's ``ThreadSensitiveContext`` has its thread already.

    A ``sync_to_async`` of the request starts it (:func:`serve` leaves a request
    with a sync caller to Django: that caller's thread would be used instead).
    """
    context = SyncToAsync.thread_sensitive_context.get(None)
    return context is None or context in SyncToAsync.context_to_thread_executor


async def serve(
    handler: ASGIHandler, plans: Plans, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one request as ``ASGIHandler.handle`` does, without the idle thread hops.

    A request served for a sync caller (``async_to_sync``), whose sync work runs in
    that caller's thread, which exists and may hold connections, is Django's.
    """
    if getattr(AsyncToSync.executors, "current", None) is not None:
        await ASGIHandler.handle(handler, scope, receive, send)  # type: ignore[arg-type]
        return
    try:
        body_file = await handler.read_body(receive)
    except RequestAborted:
        return
    sender = type(handler)
    with contextlib.closing(body_file):
        set_script_prefix(get_script_prefix(scope))
        plan = plans.of(signals.request_started, sender)
        if plan.applies():
            await plan.send(signals.request_started, sender, scope=scope)
        else:
            await signals.request_started.asend(sender=sender, scope=scope)
        request, error_response = handler.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await handler.send_response(error_response, send)  # type: ignore[arg-type]
            await close(error_response, None, plans)
            return
        respond = _respond_in_a_group if django.VERSION >= (6, 1) else _respond_in_tasks
        response = await respond(handler, request, receive, send)
        if response is None:  # the client left, or the view was cancelled
            plan = plans.of(signals.request_finished, sender)
            if plan.applies():
                await plan.send(signals.request_finished, sender)
            else:
                await signals.request_finished.asend(sender=sender)
        else:
            await close(response, request, plans)


async def close(response: Any, request: Any, plans: Plans) -> None:
    """``response.close()``: in place if nothing of it needs a thread, else as Django."""
    sender = response._handler_class  # noqa: SLF001 (Django's sender of request_finished)
    plan = plans.of(signals.request_finished, sender)
    if not (_closes_in_place(response, request) and plan.applies()):
        await sync_to_async(response.close)()
        return
    if request is not None:
        with contextlib.suppress(Exception):  # as Django's close() ignores its closers'
            request.close()
    response._resource_closers.clear()  # noqa: SLF001
    response.closed = True
    await plan.send(signals.request_finished, sender)


def _closes_in_place(response: Any, request: Any) -> bool:
    """Whether closing ``response`` runs nothing but Django's own closes of the request.

    Django adds ``request.close`` to every response's closers; it closes the request's
    body and its uploaded files. Anything else (a file, a sync iterator) closes in the
    request's thread, as in Django.
    """
    if type(response).close is not HttpResponseBase.close:
        return False
    closers = response._resource_closers  # noqa: SLF001
    if request is None:
        return not closers
    closer = closers[0] if len(closers) == 1 else None
    return (
        getattr(closer, "__func__", None) is ASGIRequest.close  # not one set on the request
        and getattr(closer, "__self__", None) is request
        and not getattr(request, "_files", None)
    )


async def _respond_in_tasks(
    handler: ASGIHandler, request: Any, receive: Receive, send: Send
) -> HttpResponseBase | None:
    """Django 5.2 and 6.0: the view and the response in a task, beside the disconnect's.

    Whichever ends first ends the other.
    """

    async def respond() -> HttpResponseBase:
        response = await handler.run_get_response(request)
        with contextlib.suppress(asyncio.CancelledError):  # the client left while it was sent
            await handler.send_response(response, send)  # type: ignore[arg-type]
        return response

    listening = asyncio.create_task(handler.listen_for_disconnect(receive))
    responding = asyncio.create_task(respond())
    await asyncio.wait((listening, responding), return_when=asyncio.FIRST_COMPLETED)
    for task in (listening, responding):  # the listener first: it raises nothing unforeseen
        if task.done():
            with contextlib.suppress(RequestAborted):  # the client went away
                task.result()
        else:
            task.cancel()  # the view may handle its cancellation
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if responding.cancelled():
        return None
    return responding.result()


class _Answered(Exception):  # noqa: N818
    """Ends the task group once the response went out."""


async def _respond_in_a_group(
    handler: ASGIHandler, request: Any, receive: Receive, send: Send
) -> HttpResponseBase | None:
    """Django 6.1: the view in the handler's task, in a task group with the listener."""
    response: HttpResponseBase | None = None
    try:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(handler.listen_for_disconnect(receive))
                response = await handler.run_get_response(request)
                await handler.send_response(response, send)  # type: ignore[arg-type]
                raise _Answered  # noqa: TRY301 (ends the group: the listener with it)
        except* (_Answered, RequestAborted):
            pass
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:
            raise failed.exceptions[0]  # noqa: B904 (as Django raises it)
        raise
    return response
