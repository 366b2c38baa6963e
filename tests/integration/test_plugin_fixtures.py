"""The plugin's fixtures, used in this very session (as a project's tests use them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
import pytest_asyncio

from lifespan_container import get_container
from lifespan_container.pytest_plugin import RunningLifespan
from lifespan_container.testing import Overrides
from lifespan_container.testing import lifespan as run_lifespan
from tests.containers import Container, Files


@pytest.fixture
def lifespan_overrides() -> Mapping[object, object]:
    return {Container.files: "fake files"}


@pytest.mark.asyncio
async def test_fixtures_run_the_lifespan_with_overrides(
    lifespan: RunningLifespan, asgi_client: httpx.AsyncClient, overrides: Overrides
) -> None:
    """`lifespan_overrides` apply before startup, `overrides` during the test."""
    assert lifespan.container is not None
    assert lifespan.container.files() == "fake files"
    assert lifespan.state == {}
    overrides(Container.greeting, "hi")
    assert (await asgi_client.get("/by-name")).text == "hi"


@pytest_asyncio.fixture
async def next_tests_lifespan(asgi_application: Any) -> AsyncIterator[None]:
    """After the test: the lifespan the next test would get, checked for leftovers.

    The test asks for it before ``lifespan`` and ``overrides``, and it needs neither,
    so it starts before them and ends after them: it sees what they left behind.
    """
    yield
    # Had the test's own lifespan not ended yet, this one would fail to start.
    async with run_lifespan(asgi_application):
        container = get_container()
        greeting, files = container.greeting(), container.files()
    assert greeting == "hello"
    assert isinstance(files, Files)


@pytest.mark.asyncio
async def test_the_next_test_starts_clean(
    next_tests_lifespan: None, lifespan: RunningLifespan, overrides: Overrides
) -> None:
    """What a test overrides (`overrides`, `lifespan_overrides`) is undone for the next.

    The test overrides both itself; ``next_tests_lifespan`` then starts the lifespan
    again after the plugin's fixtures ended, and finds the real providers: run alone
    or with the others, nothing depends on what another test left.
    """
    assert lifespan.container is not None
    assert lifespan.container.greeting() == "hello"
    overrides(Container.greeting, "hi")
    assert lifespan.container.greeting() == "hi"
    assert lifespan.container.files() == "fake files"
