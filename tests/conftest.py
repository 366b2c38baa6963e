"""Fixtures shared by the library's tests."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest
from django.dispatch import Signal

from tests.clock import LoopClock
from tests.resources import Journal

if TYPE_CHECKING:
    from lifespan_container._injected import InjectedFunctions
    from lifespan_container.runtime import Runtime

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
def install_container() -> Iterator[Callable[[Any], Runtime]]:
    """Make a container the process's (``get_runtime()``) for one test; undone after it.

    Each call installs one with ``use_container()``; after the test they are undone,
    newest first, so the runtime of before the test is back.
    """
    from lifespan_container.testing import use_container  # noqa: PLC0415

    with contextlib.ExitStack() as installed:

        def install(container: Any) -> Runtime:
            return installed.enter_context(use_container(container))

        yield install


@pytest.fixture
def journal() -> Journal:
    """The record of what the test's resources did, in order."""
    return Journal()


@pytest.fixture
def clock() -> Iterator[LoopClock]:
    """The event loop's clock, moved past a time limit by the test (see tests/clock.py)."""
    moved = LoopClock()
    yield moved
    moved.restore()


Registry: TypeAlias = "InjectedFunctions"


@pytest.fixture
def registry() -> Iterator[Registry]:
    """The ``@inject`` registry for one test: what the test decorates is forgotten after it.

    ``@inject`` registers every function it decorates (for the system checks), so a
    view a test defines would otherwise be checked, and resolved again, in later
    tests until it is garbage-collected.
    """
    from lifespan_container._injected import REGISTRY  # noqa: PLC0415

    saved = list(REGISTRY)
    yield REGISTRY
    REGISTRY.replace(saved)
