"""serve_lifespan driven with in-memory queues: every message path of the ASGI lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from lifespan_container.engine.protocol import Message, failure_message, serve_lifespan
from lifespan_container.exceptions import LifespanContainerError, StartupFailedError

pytestmark = pytest.mark.asyncio

STARTUP = {"type": "lifespan.startup"}
SHUTDOWN = {"type": "lifespan.shutdown"}
STARTUP_COMPLETE = {"type": "lifespan.startup.complete"}
SHUTDOWN_COMPLETE = {"type": "lifespan.shutdown.complete"}


class Server:
    """The server's side: messages queued for the app, messages the app sent, calls made."""

    def __init__(self, *messages: Message) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        for message in messages:
            self.inbox.put_nowait(message)
        self.sent: list[Message] = []
        self.calls: list[str] = []

    async def receive(self) -> Mapping[str, Any]:
        return await self.inbox.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def serve(
        self,
        startup_error: BaseException | None = None,
        shutdown_error: BaseException | None = None,
    ) -> None:
        async def startup() -> None:
            self.calls.append("startup")
            if startup_error is not None:
                raise startup_error

        async def shutdown() -> None:
            self.calls.append("shutdown")
            if shutdown_error is not None:
                raise shutdown_error

        async with asyncio.timeout(10):  # a bound only a broken loop reaches
            await serve_lifespan(self.receive, self.send, startup=startup, shutdown=shutdown)


async def test_startup_then_shutdown_are_answered_complete() -> None:
    """Each phase runs once and is answered; the loop returns after shutdown.complete."""
    server = Server(STARTUP, SHUTDOWN)
    await server.serve()
    assert server.calls == ["startup", "shutdown"]
    assert server.sent == [STARTUP_COMPLETE, SHUTDOWN_COMPLETE]


async def test_unknown_messages_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """A message type of a newer protocol neither fails nor ends the lifespan."""
    server = Server({"type": "lifespan.future"}, STARTUP, {"type": "lifespan.other"}, SHUTDOWN)
    with caplog.at_level(logging.WARNING, logger="lifespan_container"):
        await server.serve()
    assert server.sent == [STARTUP_COMPLETE, SHUTDOWN_COMPLETE]
    assert "Ignoring an unknown lifespan message of type 'lifespan.future'." in caplog.text
    assert "'lifespan.other'" in caplog.text


async def test_a_shutdown_before_any_startup_is_answered_at_once() -> None:
    """Nothing was started: nothing is shut down, and the answer is complete."""
    server = Server(SHUTDOWN)
    await server.serve()
    assert server.calls == []
    assert server.sent == [SHUTDOWN_COMPLETE]


async def test_a_second_startup_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """A repeated lifespan.startup runs nothing and is not answered."""
    server = Server(STARTUP, STARTUP, SHUTDOWN)
    with caplog.at_level(logging.WARNING, logger="lifespan_container"):
        await server.serve()
    assert server.calls == ["startup", "shutdown"]
    assert server.sent == [STARTUP_COMPLETE, SHUTDOWN_COMPLETE]
    assert "Ignoring a second 'lifespan.startup'" in caplog.text


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (StartupFailedError("Startup failed: resource 'db' raised OSError."), None),
        (ValueError("boom"), "ValueError: boom"),
        (ValueError(), "ValueError"),
    ],
)
async def test_a_failing_startup_sends_startup_failed_and_reraises(
    error: BaseException, message: str | None
) -> None:
    """startup.failed carries the library's own message as it is, or else the typed error."""
    server = Server(STARTUP, SHUTDOWN)
    with pytest.raises(type(error)) as raised:
        await server.serve(startup_error=error)
    assert raised.value is error
    assert server.sent == [{"type": "lifespan.startup.failed", "message": message or str(error)}]
    assert server.calls == ["startup"]
    assert server.inbox.get_nowait() == SHUTDOWN  # not read: the lifespan ended


async def test_a_failing_shutdown_sends_shutdown_failed_and_reraises() -> None:
    """shutdown.failed carries the message, then the error goes on to the server."""
    error = RuntimeError("pool would not close")
    server = Server(STARTUP, SHUTDOWN)
    with pytest.raises(RuntimeError) as raised:
        await server.serve(shutdown_error=error)
    assert raised.value is error
    assert server.sent == [
        STARTUP_COMPLETE,
        {"type": "lifespan.shutdown.failed", "message": "RuntimeError: pool would not close"},
    ]


async def test_a_cancelled_startup_is_answered_failed_before_the_cancellation_goes_on() -> None:
    """Cancelled while starting: the server still hears startup.failed."""
    started = asyncio.Event()

    async def startup() -> None:
        started.set()
        await asyncio.Event().wait()

    async def shutdown() -> None:
        raise AssertionError  # pragma: no cover

    server = Server(STARTUP)
    serving = asyncio.create_task(
        serve_lifespan(server.receive, server.send, startup=startup, shutdown=shutdown)
    )
    await started.wait()
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert server.sent == [{"type": "lifespan.startup.failed", "message": "CancelledError"}]


async def test_failure_messages_mask_credentials() -> None:
    """Both the library's own errors and foreign ones have their credentials masked."""
    own = LifespanContainerError("Startup failed: postgresql://app:hunter2@db/app refused.")
    foreign = ConnectionError("password=hunter2 host=db")
    assert failure_message(own) == "Startup failed: postgresql://app:****@db/app refused."
    assert failure_message(foreign) == "ConnectionError: password=**** host=db"
