"""The drop-in project under a real uvicorn server, in a thread of this process.

The server runs its lifespan (``lifespan="on"``) for the whole session, in its
own event loop, while the other tests run their lifespans in theirs: the
process-wide runtime serves both.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus

import httpx
import pytest
import uvicorn
from uvicorn.lifespan.on import LifespanOn

from tests.dal_suite.support import WITHIN, UpstreamThread


class ThreadedServer(uvicorn.Server):
    """uvicorn serving on a socket we bound (a free port), in a thread we stop."""

    @contextlib.contextmanager
    def serving(self, sock: socket.socket) -> Iterator[None]:
        thread = threading.Thread(target=self.run, kwargs={"sockets": [sock]}, name="uvicorn")
        thread.start()
        try:
            deadline = time.monotonic() + WITHIN
            while not self.started:
                assert thread.is_alive(), "uvicorn stopped before it served (see the log)"
                assert time.monotonic() < deadline, f"uvicorn did not start within {WITHIN} s"
                time.sleep(0.01)
            yield
        finally:
            self.should_exit = True
            thread.join(WITHIN)
        assert not thread.is_alive(), f"uvicorn did not stop within {WITHIN} s"
        assert isinstance(self.lifespan, LifespanOn)
        assert not self.lifespan.startup_failed
        assert not self.lifespan.shutdown_failed, "the lifespan shutdown failed (see the log)"


@pytest.fixture(scope="session")
def server_url(upstream: UpstreamThread) -> Iterator[str]:
    """The URL of the server, started once for the session (after the upstream)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
        config = uvicorn.Config(
            "tests.dal_project.asgi:application",
            host=host,
            port=port,
            lifespan="on",
            loop="asyncio",
            log_config=None,
            access_log=False,
        )
        with ThreadedServer(config).serving(sock):
            yield f"http://{host}:{port}"


@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.asyncio
async def test_uvicorn_serves_the_app_config_view(
    server_url: str, upstream: UpstreamThread, attempt: int
) -> None:
    before = upstream.requests
    async with httpx.AsyncClient(timeout=WITHIN) as client:
        response = await client.get(f"{server_url}/client-from-app-config")
    assert response.status_code == HTTPStatus.OK, response.text
    assert response.text.startswith("OK app config")
    assert upstream.requests == before + 1
