"""Drive an ASGI application's lifespan and requests deterministically; record what it sends."""

from __future__ import annotations

import asyncio
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


def http_scope(path: str, query: str = "") -> dict[str, Any]:
    """The scope of a ``GET path?query`` as an HTTP/1.1 server sends it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class Exchange:
    """One HTTP request to an ASGI app, with the disconnect in the test's hands.

    ``receive`` gives the (empty) body, then waits for :attr:`disconnect`: set by the
    test (the client went away) or by the last chunk of the response (as uvicorn and
    httpx do once the exchange is over).
    """

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path
        self.sent: list[dict[str, Any]] = []
        self.body_started = asyncio.Event()
        self.disconnect = asyncio.Event()
        self._requested = False

    async def receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.body_started.set()
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.disconnect.set()

    def run(self) -> asyncio.Task[None]:
        """Start the request in a task of its own, as a server does."""
        return asyncio.ensure_future(self.app(http_scope(self.path), self.receive, self.send))
