"""What the drop-in suite's tests share: the upstream thread, the harness bounds."""

from __future__ import annotations

import asyncio
import threading

from tests.upstream import Upstream

# Bounds for the harness itself (a thread starting or stopping), never expectations.
WITHIN = 30.0


class UpstreamThread:
    """``tests.upstream.Upstream`` served by an event loop of its own, in a thread.

    Both the uvicorn thread's loop and each test's loop send requests to it.
    """

    def __init__(self) -> None:
        self.upstream = Upstream()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="upstream")

    @property
    def url(self) -> str:
        return self.upstream.url

    @property
    def requests(self) -> int:
        return self.upstream.requests

    async def _serve(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with self.upstream:
                self._ready.set()
                await self._stop.wait()
        finally:
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(WITHIN)
        assert self.url, "the upstream did not start"

    def stop(self) -> None:
        """Stop serving; every client connection must have been closed by now."""
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WITHIN)
        assert not self._thread.is_alive(), "the upstream did not stop (a connection left open?)"
