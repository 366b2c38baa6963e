"""Django's ASGI handler, taught the lifespan protocol.

:class:`LifespanHandler` is a subclass of ``django.core.handlers.asgi.ASGIHandler``.
``http`` scopes go to Django unchanged; ``lifespan`` scopes run the container's
lifecycle and the lifespan signals, in this order:

startup
    1. open every resource of the container (ordered, concurrent, all or nothing);
    2. send ``asgi_startup`` (receivers can use the open resources).

    Both steps together are bounded by ``STARTUP_TIMEOUT``. If anything fails or
    the time passes, every opened resource is closed again (bounded by
    ``SHUTDOWN_TIMEOUT``) and the server gets ``lifespan.startup.failed``.

shutdown
    1. send ``asgi_shutdown`` (the resources are still open);
    2. close every resource, even when a receiver failed.

    Both steps together are bounded by ``SHUTDOWN_TIMEOUT``; every failure is
    logged with its traceback and reported in ``lifespan.shutdown.failed``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

from lifespan_container._phase import Failure, Tracker, describe
from lifespan_container._redact import get_logger, redact
from lifespan_container._runtime import Runtime, get_runtime
from lifespan_container.checks import refuse_foreign_views
from lifespan_container.conf import lifespan_settings
from lifespan_container.exceptions import (
    ShutdownFailedError,
    StartupFailedError,
    UnsupportedScopeError,
)
from lifespan_container.protocol import serve_lifespan
from lifespan_container.signals import asgi_shutdown, asgi_startup, dispatch

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, MutableMapping

__all__ = ["LifespanHandler", "start", "stop"]

logger = get_logger("lifespan_container")


class LifespanHandler(ASGIHandler):
    """An ``ASGIHandler`` that also answers the ASGI ``lifespan`` scope.

    ``runtime`` is the container and lifecycle to drive; by default, the one the
    ``lifespan_container`` app loaded from settings.
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        super().__init__()
        self._runtime = runtime
        self._first_request = True

    @property
    def runtime(self) -> Runtime:
        """The container and lifecycle this handler drives."""
        if self._runtime is None:
            self._runtime = get_runtime()
        return self._runtime

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Mapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        """Serve ``http`` with Django and ``lifespan`` with the container.

        The types are the broadest an ASGI server or httpx's ``ASGITransport`` passes.
        """
        kind = scope["type"]
        if kind == "http":
            if self._first_request:
                self._warn_if_served_without_lifespan()
            await super().__call__(scope, receive, send)  # type: ignore[arg-type]
        elif kind == "lifespan":
            self._first_request = False
            await serve_lifespan(
                receive,  # type: ignore[arg-type]
                send,  # type: ignore[arg-type]
                startup=functools.partial(self.startup, scope),
                shutdown=functools.partial(self.shutdown, scope),
            )
        else:
            msg = (
                f"This handler serves 'http' and 'lifespan' connections, not {kind!r}. To "
                "serve websockets, route by protocol with Channels: application = "
                "ProtocolTypeRouter({'http': django_app, 'lifespan': django_app, "
                "'websocket': websocket_app}) where django_app = "
                "lifespan_container.asgi.get_asgi_application()."
            )
            raise UnsupportedScopeError(msg)

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

        async def receivers(tracker: Tracker, budget: float) -> list[Failure]:  # noqa: ARG001
            with tracker.step("importing the URLconf"):
                await sync_to_async(refuse_foreign_views)()
            return await dispatch(
                asgi_startup,
                sender=type(self),
                tracker=tracker,
                fail_fast=True,
                scope=scope,
                state=scope.get("state"),
            )

        await start(self.runtime, receivers)

    async def shutdown(self, scope: Mapping[str, Any]) -> None:
        """Send ``asgi_shutdown``, then close the resources; bounded, never half way."""

        async def receivers(tracker: Tracker, budget: float) -> list[Failure]:
            return await dispatch(
                asgi_shutdown,
                sender=type(self),
                tracker=tracker,
                fail_fast=False,
                timeout=budget,
                limit=f"{budget:g} s, half of {_limit('SHUTDOWN', budget * 2)}",
                scope=scope,
                state=scope.get("state"),
            )

        await stop(self.runtime, receivers)


async def start(
    runtime: Runtime, receivers: Callable[[Tracker, float], Awaitable[list[Failure]]] | None = None
) -> None:
    """Open the runtime's resources, then run ``receivers``: all or nothing, bounded.

    The whole is bounded by ``STARTUP_TIMEOUT``. If anything fails or the time
    passes, every opened resource is closed again (bounded by ``SHUTDOWN_TIMEOUT``)
    and :class:`StartupFailedError` is raised naming each failure. ``receivers``
    gets the tracker and the seconds of the limit.
    """
    settings = lifespan_settings()
    lifecycle = runtime.lifecycle
    runtime.lifespans += 1
    runtime.refuse_class_overrides()
    if lifecycle is not None and lifecycle.in_use:
        msg = (
            "Startup failed: the container's resources are already open, for another "
            "lifespan of this process. One container serves one lifespan at a time: "
            "in tests, nest neither lifespan() nor lifespan_client() inside the "
            "`lifespan` fixture (use its asgi_client), nor two lifespans in one test."
        )
        logger.error(msg)
        raise StartupFailedError(msg)
    runtime.phase = "starting"
    tracker = Tracker()
    try:
        async with asyncio.timeout(settings.startup_timeout):
            failures = await lifecycle.start(tracker) if lifecycle else []
            if not failures and receivers is not None:
                failures = await receivers(tracker, settings.startup_timeout)
    except TimeoutError:
        # Steps report their own errors as failures: this can only be the deadline.
        reason = f"did not finish within {_limit('STARTUP', settings.startup_timeout)}"
        failures = [Failure(step, reason=reason) for step in tracker.interrupted] or [
            Failure("startup", reason=reason)
        ]
    except BaseException:
        # Cancelled by the server: still close what was opened.
        try:
            if lifecycle:
                await lifecycle.stop(settings.shutdown_timeout)
        finally:
            runtime.phase = "stopped"
        raise
    if not failures:
        runtime.phase = "serving"
        return
    message = f"Startup failed: {describe(failures)}."
    try:
        if lifecycle:
            rollback = await lifecycle.stop(
                settings.shutdown_timeout, limit=_limit("SHUTDOWN", settings.shutdown_timeout)
            )
            if rollback:
                message += f" Closing the opened resources also failed: {describe(rollback)}."
    finally:
        runtime.phase = "stopped"
    logger.error(message)
    raise StartupFailedError(message, failures) from _first_error(failures)


async def stop(
    runtime: Runtime, receivers: Callable[[Tracker, float], Awaitable[list[Failure]]] | None = None
) -> None:
    """Run ``receivers``, then close the runtime's resources; bounded, never half way.

    The whole is bounded by ``SHUTDOWN_TIMEOUT``; ``receivers`` gets at most half
    of it, so that the resources always have the other half to close. Every
    failure is logged and raised together in :class:`ShutdownFailedError`.
    """
    settings = lifespan_settings()
    lifecycle = runtime.lifecycle
    runtime.phase = "stopping"
    tracker = Tracker()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.shutdown_timeout
    failures: list[Failure] = []
    try:
        if receivers is not None:
            failures = await receivers(tracker, settings.shutdown_timeout / 2)
    finally:
        # Also when the receivers were cancelled: the resources close regardless.
        try:
            if lifecycle:
                failures += await lifecycle.stop(
                    max(deadline - loop.time(), 0.0),
                    tracker,
                    limit=_limit("SHUTDOWN", settings.shutdown_timeout),
                )
        finally:
            runtime.phase = "stopped"
    if failures:
        message = f"Shutdown finished with errors: {describe(failures)}."
        logger.error(message)
        raise ShutdownFailedError(message, failures) from _first_error(failures)


def _limit(phase: str, seconds: float) -> str:
    return f'LIFESPAN_CONTAINER["{phase}_TIMEOUT"] ({seconds:g} s)'


def _first_error(failures: list[Failure]) -> BaseException | None:
    """The error to chain to the raised one, unless its text carries credentials.

    The server prints the chain; the library's own message and log record already
    name the error, masked.
    """
    error = next((failure.error for failure in failures if failure.error is not None), None)
    return error if error is None or redact(str(error)) == str(error) else None
