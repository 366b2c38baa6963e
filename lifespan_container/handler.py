"""Django's ASGI handler, taught the lifespan protocol.

:class:`LifespanHandler` is a subclass of ``django.core.handlers.asgi.ASGIHandler``.
``http`` scopes go through Django's request cycle, which the handler runs itself so
that a request starts Django's per-request thread only when something needs it
(``FAST_PATH``; see ``_request_cycle``), with request-scoped resources closed after
the response; ``lifespan`` scopes run the container's lifecycle and the lifespan
signals, in this order:

startup
    1. open every resource of the container (ordered, concurrent, all or nothing);
    2. enter the lifespan managers (``register_lifespan_manager``, ``asgi_lifespan``)
       and merge what they yield into the state;
    3. send ``asgi_startup`` (receivers can use the open resources and the state).

    All together are bounded by ``STARTUP_TIMEOUT``. If anything fails or the
    time passes, every entered manager is exited and every opened resource is
    closed again (bounded by ``SHUTDOWN_TIMEOUT``) and the server gets
    ``lifespan.startup.failed``.

shutdown
    1. send ``asgi_shutdown`` (the resources are still open);
    2. exit the lifespan managers, then close every resource, even when a
       receiver failed.

    All together are bounded by ``SHUTDOWN_TIMEOUT``; every failure is
    logged with its traceback and reported in ``lifespan.shutdown.failed``.
"""

from __future__ import annotations

import asyncio
import functools
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

from lifespan_container._checks import refuse_foreign_views
from lifespan_container._dispatch import dispatch
from lifespan_container._managers import managers_for
from lifespan_container._redact import get_logger
from lifespan_container._request_cycle import Plans, serve
from lifespan_container._request_end import (
    closing_cancelled,
    failure_of,
    requests_end,
    view_unwound,
)
from lifespan_container._request_scope import ATTRIBUTE, bind, call_sync
from lifespan_container._runtime import Runtime, get_runtime
from lifespan_container._settings import fast_path, lifespan_settings, request_cleanup_limit
from lifespan_container.engine.protocol import Message, Receive, Scope, Send, serve_lifespan
from lifespan_container.engine.request_scope import RequestScope, current
from lifespan_container.exceptions import UnsupportedScopeError
from lifespan_container.signals import asgi_shutdown, asgi_startup

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from django.dispatch import Signal

    from lifespan_container.engine.limits import Limit
    from lifespan_container.engine.managers import LifespanManagers
    from lifespan_container.engine.steps import Failure, Tracker

    Receivers = Callable[[Tracker, Limit], Awaitable[list[Failure]]]

__all__ = ["LifespanASGIHandler", "LifespanHandler", "start", "stop"]

logger = get_logger("lifespan_container")

_body_file: ContextVar[Any] = ContextVar("lifespan_container_body_file", default=None)
_server_task: ContextVar[asyncio.Task[Any] | None] = ContextVar(
    "lifespan_container_server_task", default=None
)


class LifespanHandler(ASGIHandler):
    """An ``ASGIHandler`` that also answers the ASGI ``lifespan`` scope.

    ``runtime`` is the container and lifecycle to drive; by default, the one the
    ``lifespan_container`` app loaded from settings.
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        super().__init__()
        self._runtime = runtime
        self._first_request = True
        self._managers: dict[int, LifespanManagers] = {}  # by lifespan scope, while it runs
        self._plans = Plans()

    @property
    def runtime(self) -> Runtime:
        """The container and lifecycle this handler drives."""
        if self._runtime is None:
            self._runtime = get_runtime()
        return self._runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``http`` with Django and ``lifespan`` with the container."""
        kind = scope["type"]
        if kind == "http":
            if self._first_request:
                self._warn_if_served_without_lifespan()
            # The shutdown waits for the request before it closes the resources.
            runtime = self.runtime
            if runtime.kept_state is not None and "state" not in scope:
                scope["state"] = dict(runtime.kept_state)  # as a server copies its state
            requests = runtime.requests
            task = cast("asyncio.Task[Any]", asyncio.current_task())  # a server's task
            requests[task] += 1
            token = _server_task.set(task)
            try:
                # django-stubs types Django's handler more narrowly (a dict scope, a
                # send taking any Mapping); at run time it takes what servers pass.
                await super().__call__(scope, receive, send)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                await view_unwound(self.runtime, task, scope.get("path", ""))
                raise
            finally:
                _server_task.reset(token)
                requests[task] -= 1
                if not requests[task]:
                    del requests[task]
        elif kind == "lifespan":
            self._first_request = False
            try:
                await serve_lifespan(
                    receive,
                    send,
                    startup=functools.partial(self.startup, scope),
                    shutdown=functools.partial(self.shutdown, scope),
                )
            finally:  # also when the server cancels it: nothing is kept for a scope gone
                self._ended(scope)
        else:
            # Django's own sentence first (its tests and users match on it), then ours.
            msg = (
                f"Django can only handle ASGI/HTTP connections, not {kind}. This handler "
                "serves 'http' and 'lifespan' connections. To serve websockets, route by "
                "protocol with Channels: application = ProtocolTypeRouter({'http': "
                "django_app, 'lifespan': django_app, 'websocket': websocket_app}) where "
                "django_app = lifespan_container.asgi.get_asgi_application()."
            )
            raise UnsupportedScopeError(msg)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request with Django, inside a scope for its request-scoped resources.

        The scope's resources are closed here, after Django's own handling ended:
        the last chunk was sent (or the client went away) and the response closed.
        A container that declares no request-scoped provider costs one test.
        """
        if not self.runtime.request_scoped:
            try:
                await self._cycle(scope, receive, send)
            except BaseException:
                _close_body_file()
                raise
            return
        request_scope = RequestScope(label=scope.get("path", ""))
        token = current.set(request_scope)
        cancelled = False
        try:
            await self._cycle(scope, receive, send)
        except BaseException as error:
            cancelled = isinstance(error, asyncio.CancelledError)  # the server gave up
            if not cancelled and not request_scope.completed:  # a complete one closes well
                request_scope.fail(error)
            _close_body_file()
            raise
        finally:
            current.reset(token)
            if not request_scope.opened and not request_scope.opening:
                request_scope.closed = True
            elif cancelled:
                await closing_cancelled(request_scope, self.runtime)
            elif request_scope.error is None and request_scope.completed:  # the usual end
                rest = request_scope.close_now(None, request_cleanup_limit(), call_sync)
                if rest is not None:
                    await rest
            else:
                await request_scope.aclose(
                    failure_of(request_scope), request_cleanup_limit(), call_sync
                )

    async def _cycle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Django's request cycle, ours or (``FAST_PATH`` off) Django's own.

        Ours starts the request's thread only when something needs it.
        """
        if fast_path():
            await serve(self, self._plans, scope, receive, send)
        else:
            await super().handle(scope, receive, send)  # type: ignore[arg-type]

    async def read_body(self, receive: Any) -> Any:
        """Django's ``read_body``; the file is remembered, to be closed if Django does not."""
        body_file = await super().read_body(receive)
        _body_file.set(body_file)
        return body_file

    async def run_get_response(self, request: Any) -> Any:
        """Django's ``run_get_response``, noting the task that runs the view.

        Django 5.2 and 6.0 run it in a task of their own, which they leave running
        when the server cancels the request: the request cancels it and waits for it,
        as Django 6.1 does, before its resources close.
        """
        task = asyncio.current_task()
        request_scope = current.get()
        if request_scope is not None:
            request_scope.worker = task  # the server's own on 6.1
        server = _server_task.get()
        if task is None or task is server or server is None:  # Django 6.1
            return await super().run_get_response(request)
        views = self.runtime.request_views
        views[server] = task
        try:
            return await super().run_get_response(request)
        finally:
            del views[server]

    def process_exception_by_middleware(self, exception: Exception, request: Any) -> Any:
        """Django's, noting the exception the view raised: it reaches the resources."""
        request_scope = request.__dict__.get(ATTRIBUTE)
        if request_scope is not None:
            request_scope.fail(exception)
        return super().process_exception_by_middleware(exception, request)

    def create_request(self, scope: Any, body_file: Any) -> Any:
        """Django's request, bound to the request's scope (for ``CurrentRequest()``)."""
        request, error_response = super().create_request(scope, body_file)
        request_scope = current.get()
        if request is not None and request_scope is not None:
            bind(request_scope, request)
        return request, error_response

    async def send_response(self, response: Any, send: Any) -> None:
        """Django's ``send_response``, noting when the whole response was sent.

        A response that is not streamed is complete once the view returned it: the
        request's resources close normally even if the client leaves while it is
        sent. A stream is complete when its last chunk goes out.
        """
        request_scope = current.get()
        if request_scope is None:
            await super().send_response(response, send)
            return
        if not response.streaming:
            request_scope.completed = True
            await super().send_response(response, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                request_scope.completed = True  # the last chunk is on its way
            try:
                await send(message)
            except OSError as error:  # ASGI 2.4: the client went away
                if not request_scope.completed:
                    aborted = RequestAborted("The client disconnected during the response.")
                    aborted.__cause__ = error
                    request_scope.fail(aborted)
                raise

        try:
            await super().send_response(response, sending)  # type: ignore[arg-type]
        except BaseException as error:
            if not request_scope.completed:
                request_scope.fail(error)
            raise

    def _warn_if_served_without_lifespan(self) -> None:
        """Once: a request came and no lifespan ever started, so no resource is open."""
        self._first_request = False
        runtime = self.runtime
        if runtime.phase == "idle" and runtime.lifecycle is not None and runtime.lifecycle.names:
            logger.warning(
                "A request is being served and the ASGI lifespan never started, so the "
                "container's resources are not open: views that use them will fail. The "
                "server sends no lifespan: uvicorn with --lifespan off (use --lifespan on), "
                "hypercorn or granian configured without it, or daphne (which never sends "
                "it; serve with uvicorn, gunicorn with "
                "lifespan_container.workers.UvicornWorker, hypercorn or granian)."
            )

    async def startup(self, scope: Mapping[str, Any]) -> None:
        """Open the resources, then send ``asgi_startup``; all or nothing, bounded.

        Before the signal, views still decorated with dependency-injector's
        ``@inject`` are made to refuse their calls with the fix (this imports the
        URLconf, as Django's checks do, within ``STARTUP_TIMEOUT``).
        """

        async def receivers(tracker: Tracker, limit: Limit) -> list[Failure]:  # noqa: ARG001
            with tracker.step("importing the URLconf"):
                await sync_to_async(refuse_foreign_views)()
            return await self._send(asgi_startup, scope, tracker, fail_fast=True)

        managers = self._managers[id(scope)] = managers_for(scope, type(self), self.runtime)
        try:
            await start(self.runtime, receivers, managers)
        except BaseException:
            self._ended(scope)
            raise

    async def shutdown(self, scope: Mapping[str, Any]) -> None:
        """Send ``asgi_shutdown``, then close the resources; bounded, never half way.

        First, the requests still running end: those the server cancelled (at its
        graceful timeout) unwind (a query is cancelled in the database, a connection
        goes back to its pool) and close their request resources; those it did not
        cancel finish. That wait and the receivers share their half of
        ``SHUTDOWN_TIMEOUT``; the resources are closed after it in any case.
        """

        async def receivers(tracker: Tracker, limit: Limit) -> list[Failure]:
            left = await requests_end(self.runtime, tracker, limit)
            return await self._send(asgi_shutdown, scope, tracker, fail_fast=False, limit=left)

        try:
            await stop(self.runtime, receivers, self._managers.get(id(scope)))
        finally:
            self._ended(scope)

    def _ended(self, scope: Mapping[str, Any]) -> None:
        """Forget the lifespan's managers, and the state kept for its requests."""
        managers = self._managers.pop(id(scope), None)
        if managers is not None and self.runtime.kept_state is managers.state:
            self.runtime.kept_state = None

    async def _send(
        self,
        signal: Signal,
        scope: Mapping[str, Any],
        tracker: Tracker,
        *,
        fail_fast: bool,
        limit: Limit | None = None,
    ) -> list[Failure]:
        """Send a lifespan signal with the scope and its state; each receiver a step."""
        return await dispatch(
            signal,
            sender=type(self),
            tracker=tracker,
            fail_fast=fail_fast,
            timeout=limit,
            scope=scope,
            state=scope.get("state"),
        )


LifespanASGIHandler = LifespanHandler
"""django-asgi-lifespan's name for the handler: the same class."""


def _close_body_file() -> None:
    """Close the request's body file, which Django 5.2 and 6.0 leave open (6.1 closes it).

    They leave it when a stream raises or the request is cancelled.
    """
    body_file = _body_file.get()
    if body_file is not None:
        body_file.close()


async def start(
    runtime: Runtime,
    receivers: Receivers | None = None,
    managers: LifespanManagers | None = None,
) -> None:
    """Open the runtime's resources, enter ``managers``, run ``receivers``: all or nothing.

    The engine's startup (:class:`~lifespan_container.engine.lifespan.Lifespan`)
    within ``STARTUP_TIMEOUT``, rolled back within ``SHUTDOWN_TIMEOUT``. Before it,
    an override of the container *class* made since the last lifespan (which the
    running container never sees) is refused with the fix.
    """
    settings = lifespan_settings()
    runtime.lifespans += 1
    runtime.refuse_class_overrides()
    await runtime.lifespan.start(settings.startup, settings.shutdown, receivers, managers)


async def stop(
    runtime: Runtime,
    receivers: Receivers | None = None,
    managers: LifespanManagers | None = None,
) -> None:
    """Run ``receivers``, exit ``managers``, close the resources; bounded, never half way.

    The engine's shutdown within ``SHUTDOWN_TIMEOUT``; ``receivers`` get at most
    half, ``managers`` at most half of what is left.
    """
    await runtime.lifespan.stop(lifespan_settings().shutdown, receivers, managers)
