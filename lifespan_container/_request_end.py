"""How a request ends in the handler: a cancelled one unwinds, the shutdown waits for them.

The handler's helpers for the end of requests: a request the server cancelled has
its view cancelled and its request-scoped resources closed in a task of their
own; the lifespan shutdown waits (bounded) for the requests in flight.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from django.core.exceptions import RequestAborted

from lifespan_container._redact import get_logger
from lifespan_container._request_scope import call_sync
from lifespan_container._settings import request_cleanup_limit

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from lifespan_container._runtime import Runtime
    from lifespan_container.engine.limits import Limit
    from lifespan_container.engine.request_scope import RequestScope
    from lifespan_container.engine.steps import Tracker

__all__ = [
    "closing_cancelled",
    "failure_of",
    "requests_end",
    "unfinished_closed",
    "view_unwound",
]

logger = get_logger("lifespan_container")


async def view_unwound(runtime: Runtime, server: asyncio.Task[Any] | None, path: str) -> None:
    """The server cancelled the request: on Django 5.2 and 6.0, cancel its view, wait for it.

    The wait is bounded by ``REQUEST_CLEANUP_TIMEOUT``: a view that ignores its
    cancellation is logged and left behind.
    """
    view = runtime.request_views.get(server)  # type: ignore[arg-type]
    if view is None or view.done():
        return
    view.cancel()
    limit = request_cleanup_limit()
    _, running = await asyncio.wait({view}, timeout=limit.seconds)
    if running:
        logger.warning(
            "The view of the cancelled request %r ignored its cancellation until the end "
            "of %s; the request ends without waiting for it any longer.",
            path,
            limit,
        )


async def unfinished_closed(runtime: Runtime) -> None:
    """Close the request scopes of responses a test never consumed nor closed.

    Each is logged, and closed as a request the client left (``RequestAborted``), on
    the lifespan's loop before its resources close.
    """
    for scope in list(runtime.open_scopes):
        runtime.open_scopes.discard(scope)
        if scope.closed or not scope.opened:
            continue
        logger.warning(
            "The response to %r was never read to its end nor closed: its request-scoped "
            "resources close now, before the lifespan's.",
            scope.label,
        )
        aborted = RequestAborted("The response was never read to its end nor closed.")
        scope.fail(aborted)
        await scope.aclose(aborted, request_cleanup_limit(), call_sync)


async def requests_end(runtime: Runtime, tracker: Tracker, limit: Limit) -> Limit:
    """Wait, within ``limit``, for the requests in flight and their closes to end.

    Returns what is left of ``limit`` after the wait, for what shares it.
    """
    loop = asyncio.get_running_loop()  # requests a server serves in another loop are its own
    running = {t for t in {*runtime.requests, *runtime.request_closes} if t.get_loop() is loop}
    if not running:
        return limit
    began = loop.time()
    logger.info(
        "Waiting for %d request(s) to end before the resources close (at most %s).",
        len(running),
        limit,
    )
    with tracker.step(f"waiting for {len(running)} request(s) to end"):
        _, pending = await asyncio.wait(running, timeout=limit.seconds)
    if pending:
        logger.warning(
            "%d request(s) still ran at the end of the wait for them (%s); the "
            "resources close under them. A server's graceful timeout (uvicorn "
            "--timeout-graceful-shutdown, gunicorn --graceful-timeout) cancels "
            "requests before the shutdown.",
            len(pending),
            limit,
        )
    return limit.rest(loop.time() - began, "the wait for the requests")


def failure_of(request_scope: RequestScope) -> BaseException | None:
    """What to throw into the request's resources: the failure, or ``RequestAborted``."""
    error = request_scope.error
    if request_scope.completed and (error is None or isinstance(error, asyncio.CancelledError)):
        return None  # the whole response went out: what came after does not undo it
    if error is None or isinstance(error, asyncio.CancelledError):
        aborted = RequestAborted("The client disconnected before the response was complete.")
        aborted.__cause__ = error
        return aborted
    return error


def closing_cancelled(request_scope: RequestScope, runtime: Runtime) -> Awaitable[None]:
    """Close the resources of a request the server cancelled; never raises but that.

    The view is cancelled first and waited for (on Django 5.2 and 6.0 it runs in a task of
    its own that would go on using the resources). The closes run in a task of their
    own, so that a second cancellation cannot cut them short, and that the lifespan's
    shutdown waits for.
    """
    handler_task = asyncio.current_task()
    worker = request_scope.worker
    task = asyncio.ensure_future(
        after_the_view(
            request_scope,
            worker if worker is not handler_task else None,
            request_cleanup_limit(),
        )
    )
    closes = runtime.request_closes
    closes.add(task)
    task.add_done_callback(closes.discard)
    return shielded(task)


async def after_the_view(
    request_scope: RequestScope, worker: asyncio.Task[Any] | None, limit: Limit
) -> None:
    if worker is not None and not worker.done():
        worker.cancel()
        await asyncio.wait({worker}, timeout=limit.seconds)  # a sync view cannot be
    if request_scope.error is None and not request_scope.completed:
        request_scope.fail(asyncio.CancelledError())
    await request_scope.aclose(failure_of(request_scope), limit, call_sync)


async def shielded(task: asyncio.Future[None]) -> None:
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})  # each step is bounded by the cleanup limit
        raise
