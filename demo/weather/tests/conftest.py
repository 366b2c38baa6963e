"""The demo's test setup: each test gets its own SQLite file and, when it asks, an upstream."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from pytest_django.fixtures import Settings

from weather.asgi import application

SERVICES_REQUIRED = os.environ.get("LIFESPAN_CONTAINER_REQUIRE_SERVICES") == "1"


@pytest.fixture(autouse=True)
def _database_file(settings: Settings, tmp_path: Path) -> None:
    """Every test starts from a fresh SQLite database (unless it sets DATABASE_URL)."""
    settings.DATABASE_URL = f"sqlite:///{tmp_path / 'weather.sqlite3'}"


def service(port: int, name: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        reason = f"{name} is not reachable at 127.0.0.1:{port}"
        if SERVICES_REQUIRED:
            pytest.fail(f"{reason}, and LIFESPAN_CONTAINER_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)


@pytest_asyncio.fixture
async def upstream(settings: Settings) -> AsyncIterator[str]:
    """The demo itself, served by a real uvicorn in this event loop: the weather API."""
    config = uvicorn.Config(
        application, host="127.0.0.1", port=0, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    for _ in range(500):  # bounded: until the socket listens
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the upstream server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    settings.UPSTREAM_URL = f"http://127.0.0.1:{port}/upstream"
    yield settings.UPSTREAM_URL
    server.should_exit = True
    await serving
