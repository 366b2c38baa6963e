"""Drive an ASGI application from the server's side, in the current loop.

What a server does with the lifespan scope (startup, then shutdown, each answered
with ``*.complete`` or ``*.failed``), and an in-process httpx client that passes
the lifespan state to each request as servers do, for the test helpers. Any ASGI application
that speaks the lifespan protocol can be driven, not only this library's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from lifespan_container._redact import get_logger
from lifespan_container.engine.steps import cancel_and_wait
from lifespan_container.exceptions import (
    LifespanContainerError,
    ShutdownFailedError,
    StartupFailedError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, MutableMapping

    import httpx

    from lifespan_container.engine.protocol import ASGIApp, Receive, Scope, Send

__all__ = ["client_for", "drive_lifespan"]

logger = get_logger("lifespan_container")

_MARGIN = 1.0
"""Seconds beyond the configured timeouts before giving up on an app that never
answers (one that is not this library's handler)."""


@contextlib.asynccontextmanager
async def drive_lifespan(app: ASGIApp, timeouts: float) -> AsyncIterator[dict[str, Any]]:
    """Run ``app``'s lifespan startup, then on exit its shutdown, as a server would.

    The block gets the lifespan ``state``. A ``*.failed`` answer raises
    :class:`StartupFailedError` or :class:`ShutdownFailedError` (what the app raised,
    if it is one); an app that never answers is given up after ``timeouts`` plus a
    margin. If the block raises, the shutdown still runs and a failure of it is
    logged instead of masking the block's exception.
    """
    limit = timeouts + _MARGIN
    state: dict[str, Any] = {}
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    try:
        answer = await _ask(inbox, outbox, task, "lifespan.startup", limit)
        if answer["type"] != "lifespan.startup.complete":
            await _raise_failed(answer, task, StartupFailedError, limit)
        try:
            yield state
        except BaseException:
            await _shutdown_quietly(inbox, outbox, task, limit)
            raise
        answer = await _ask(inbox, outbox, task, "lifespan.shutdown", limit)
        if answer["type"] != "lifespan.shutdown.complete":
            await _raise_failed(answer, task, ShutdownFailedError, limit)
        await _ended(task, limit)
        if task.done():
            task.result()  # what the application raised after answering
    finally:
        if not task.done():
            await cancel_and_wait([task])  # bounded: an app may ignore its cancellation


async def _ask(
    inbox: asyncio.Queue[dict[str, Any]],
    outbox: asyncio.Queue[MutableMapping[str, Any]],
    task: asyncio.Future[None],
    event: str,
    limit: float,
) -> MutableMapping[str, Any]:
    """Send ``event``; return the application's answer."""
    await inbox.put({"type": event})
    answering = asyncio.ensure_future(outbox.get())
    try:
        waiting: set[asyncio.Future[Any]] = {answering, task}
        done, _ = await asyncio.wait(waiting, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not answering.done():
            answering.cancel()
            await asyncio.wait([answering])
    if answering in done:
        return answering.result()
    if task in done:
        error = task.exception()
        msg = (
            f"The application returned without answering {event!r}: it does not speak the "
            "ASGI lifespan protocol. Pass the handler of "
            "lifespan_container.asgi.get_asgi_application() (or an application that "
            "routes 'lifespan' to it)."
        )
        raise LifespanContainerError(msg) from error
    msg = (
        f"The application did not answer {event!r} within {limit:g} s (the configured "
        "startup and shutdown timeouts, plus a margin)."
    )
    raise LifespanContainerError(msg)


async def _raise_failed(
    answer: Mapping[str, Any],
    task: asyncio.Future[None],
    error: type[StartupFailedError | ShutdownFailedError],
    limit: float,
) -> None:
    """Raise what the application raised after ``*.failed``, or an error with its message."""
    await _ended(task, limit)
    raised = task.exception() if task.done() else None
    if isinstance(raised, error):
        raise raised
    raise error(str(answer.get("message", answer))) from raised


async def _shutdown_quietly(
    inbox: asyncio.Queue[dict[str, Any]],
    outbox: asyncio.Queue[MutableMapping[str, Any]],
    task: asyncio.Future[None],
    limit: float,
) -> None:
    """Shut down after the block raised: log a failure instead of masking the error."""
    try:
        answer = await _ask(inbox, outbox, task, "lifespan.shutdown", limit)
        await _ended(task, limit)
    except LifespanContainerError:
        logger.exception("The lifespan shutdown after a failed test failed too.")
        return
    if answer["type"] != "lifespan.shutdown.complete":
        logger.error("The lifespan shutdown after a failed test failed too: %s", answer)


async def _ended(task: asyncio.Future[None], limit: float) -> None:
    """Wait for the application to return, ``limit`` seconds at most.

    One that answered and keeps running is cancelled by the caller's cleanup.
    """
    await asyncio.wait([task], timeout=limit)


@contextlib.asynccontextmanager
async def client_for(
    app: ASGIApp, state: dict[str, Any], base_url: str = "http://testserver", **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process ``httpx.AsyncClient`` for ``app`` whose lifespan already runs."""
    import httpx  # noqa: PLC0415 (a test dependency, not a dependency of the library)

    transport = httpx.ASGITransport(app=_with_state(app, state))
    async with httpx.AsyncClient(transport=transport, base_url=base_url, **options) as client:
        yield client


def _with_state(app: ASGIApp, state: dict[str, Any]) -> ASGIApp:
    """``app`` with a shallow copy of ``state`` in every request's scope."""

    async def app_with_state(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    return app_with_state
