"""The ASGI lifespan protocol loop, free of Django.

It follows the lifespan specification (asgiref ``specs/lifespan.rst``) and the
state machine Starlette made familiar: receive ``lifespan.startup``, run the
startup, answer ``lifespan.startup.complete``; receive ``lifespan.shutdown``, run
the shutdown, answer ``lifespan.shutdown.complete``. A failing phase is answered
with ``lifespan.startup.failed`` or ``lifespan.shutdown.failed`` carrying a
message that says what failed, and then the exception is raised again.

Sending ``*.failed`` first matters: uvicorn, gunicorn, hypercorn and granian in
their default ("auto") mode take an application that raises without it for one
that does not support the lifespan, and serve on with nothing initialised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, TypeAlias

from lifespan_container._redact import describe_error, get_logger, redact
from lifespan_container.exceptions import LifespanContainerError

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "failure_message",
    "serve_lifespan",
]

# The package's one vocabulary for ASGI, the broadest every caller fits: servers,
# httpx's ASGITransport (MutableMapping scope and messages), Django's test clients,
# and Django's own handler as django-stubs types it (receive gives a Mapping).
Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Mapping[str, Any]]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
# What the test helpers accept: ASGI applications annotate their three parameters
# in many ways (Channels' routers, Starlette, plain functions): accept them all.
ASGIApp: TypeAlias = Callable[..., Awaitable[None]]

logger = get_logger("lifespan_container")


async def serve_lifespan(
    receive: Receive,
    send: Send,
    *,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
) -> None:
    """Answer one lifespan connection, calling ``startup`` and ``shutdown`` in turn.

    Returns after ``lifespan.shutdown.complete``. Unknown message types are logged
    and ignored, so a server speaking a newer version of the protocol is not
    refused. A ``lifespan.shutdown`` that comes before any startup completed is
    answered at once: there is nothing to shut down.
    """
    started = False
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "lifespan.startup":
            if started:
                logger.warning("Ignoring a second 'lifespan.startup': startup already completed.")
                continue
            try:
                await startup()
            except BaseException as exc:
                await send({"type": "lifespan.startup.failed", "message": failure_message(exc)})
                raise
            await send({"type": "lifespan.startup.complete"})
            started = True
        elif kind == "lifespan.shutdown":
            if started:
                try:
                    await shutdown()
                except BaseException as exc:
                    await send(
                        {"type": "lifespan.shutdown.failed", "message": failure_message(exc)}
                    )
                    raise
            await send({"type": "lifespan.shutdown.complete"})
            return
        else:
            logger.warning("Ignoring an unknown lifespan message of type %r.", kind)


def failure_message(exc: BaseException) -> str:
    """The text for a ``*.failed`` message: our own messages as they are, others typed."""
    if isinstance(exc, LifespanContainerError):
        return redact(str(exc))
    return describe_error(exc)
