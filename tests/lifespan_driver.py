"""Drive an ASGI application's lifespan deterministically and record what it sends."""

from __future__ import annotations

from typing import Any

from asgiref.testing import ApplicationCommunicator

# Generous bounds for the test itself; the behaviour under test never waits for them.
WAIT = 10.0

STARTUP: dict[str, Any] = {"type": "lifespan.startup"}
SHUTDOWN: dict[str, Any] = {"type": "lifespan.shutdown"}
STARTUP_COMPLETE: dict[str, Any] = {"type": "lifespan.startup.complete"}
SHUTDOWN_COMPLETE: dict[str, Any] = {"type": "lifespan.shutdown.complete"}


def lifespan_scope(state: dict[str, Any] | None = None) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    if state is not None:
        scope["state"] = state
    return scope


class Lifespan:
    """One lifespan connection to ``app``: send events, read answers."""

    def __init__(self, app: Any, state: dict[str, Any] | None = None) -> None:
        self.communicator = ApplicationCommunicator(app, lifespan_scope(state))

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        return await self.answer()

    async def send(self, message: dict[str, Any]) -> None:
        """Send ``message`` without waiting for the answer (read it with :meth:`answer`)."""
        await self.communicator.send_input(message)

    async def answer(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self.communicator.receive_output(WAIT)
        return answer

    async def startup(self) -> dict[str, Any]:
        return await self.ask(STARTUP)

    async def shutdown(self) -> dict[str, Any]:
        return await self.ask(SHUTDOWN)

    async def finish(self) -> None:
        """Wait for the application to return (re-raising what it raised)."""
        await self.communicator.wait(WAIT)
