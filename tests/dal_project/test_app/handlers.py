"""What the test app connects: a lifespan manager factory and two signal receivers."""

from __future__ import annotations

import asyncio
import weakref
from contextlib import asynccontextmanager
from typing import Any

import httpx

from lifespan_container.types import LifespanManager

CLOSE_WITHIN = 5.0


class Entries:
    """How many times :func:`httpx_lifespan_manager` was entered (the suite reads it)."""

    count = 0


@asynccontextmanager
async def httpx_lifespan_manager() -> LifespanManager:
    """A client for the lifespan state, closed when the lifespan ends."""
    Entries.count += 1
    client = httpx.AsyncClient()
    try:
        yield {"httpx_client_from_user": client}
    finally:
        await client.aclose()


class AppConfigClients:
    """Opens an HTTPX client on ``asgi_startup``, closes it on ``asgi_shutdown``.

    The client is kept on the app config, one per event loop: a client belongs to
    the loop it was made in, and this process can run two lifespans at once (the
    suite's uvicorn thread, and a test's own loop). The closed client stays there
    after the shutdown, so that the view can say it is closed.
    """

    def __init__(self) -> None:
        self.clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def current(self) -> httpx.AsyncClient | None:
        """The client of the running event loop's lifespan, if one started here."""
        return self.clients.get(asyncio.get_running_loop())

    async def startup(self, **kwargs: Any) -> str:
        # A receiver may return a value: the handler must ignore it.
        self.clients[asyncio.get_running_loop()] = httpx.AsyncClient()
        return "the app config's HTTPX client is open"

    async def shutdown(self, **kwargs: Any) -> None:
        client = self.current()
        if client is not None:
            async with asyncio.timeout(CLOSE_WITHIN):
                await client.aclose()
