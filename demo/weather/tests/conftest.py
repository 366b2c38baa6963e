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


@pytest.fixture
def postgres(settings: Settings) -> None:
    """The database is the local PostgreSQL (a psycopg pool), not SQLite."""
    service(5432, "PostgreSQL")
    settings.DATABASE_URL = os.environ.get(
        "DEMO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    """The demo served by a real uvicorn in this event loop: its base URL.

    Its lifespan is off: the test's ``lifespan`` (or ``asgi_client``) runs the
    real one, and the requests this server serves use the resources it opened.
    """
    config = uvicorn.Config(
        application, host="127.0.0.1", port=0, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    for _ in range(500):  # bounded: until the socket listens
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the demo server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
def upstream(server: str, settings: Settings) -> str:
    """The weather API is the demo's own, served by a real uvicorn (``server``)."""
    url = f"{server}/upstream"
    settings.UPSTREAM_URL = url
    return url
