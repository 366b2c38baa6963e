"""Fixtures shared by the library's tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.dispatch import Signal

pytest_plugins = ["pytester"]

SERVICES_REQUIRED = os.environ.get("LIFESPAN_CONTAINER_REQUIRE_SERVICES") == "1"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _require(name: str, port: int) -> None:
    """Skip without the service at 127.0.0.1:`port`; fail instead where CI requires it."""
    if not _reachable(port):
        message = f"{name} is not reachable at 127.0.0.1:{port}"
        if SERVICES_REQUIRED:
            pytest.fail(f"{message}, and LIFESPAN_CONTAINER_REQUIRE_SERVICES=1 requires it.")
        pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """A DSN for the local PostgreSQL; skips (or fails in CI) when it is unreachable."""
    _require("PostgreSQL", 5432)
    return os.environ.get(
        "LIFESPAN_CONTAINER_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test"
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A URL for the local Redis; skips (or fails in CI) when it is unreachable."""
    _require("Redis", 6379)
    return "redis://127.0.0.1:6379/0"


Connect = Callable[[Signal, Callable[..., Any]], None]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Connect receivers for one test; they are disconnected after it."""
    connected: list[tuple[Signal, Callable[..., Any]]] = []

    def _connect(signal: Signal, receiver: Callable[..., Any]) -> None:
        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))

    yield _connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.fixture
def install_container() -> Iterator[Callable[[Any], Any]]:
    """Make a container the process's (``get_runtime()``) for one test; undone after it."""
    from lifespan_container._runtime import Runtime, set_runtime  # noqa: PLC0415

    previous: list[Runtime | None] = []

    def install(container: Any) -> Runtime:
        runtime = Runtime(container)
        previous.append(set_runtime(runtime))
        return runtime

    yield install
    if previous:
        set_runtime(previous[0])
