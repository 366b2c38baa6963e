"""The plugin's fixtures, used in this very session (as a project's tests use them)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from lifespan_container.pytest_plugin import RunningLifespan
from lifespan_container.testing import Overrides
from tests.containers import Container


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


@pytest.mark.asyncio
async def test_the_next_test_starts_clean(lifespan: RunningLifespan) -> None:
    assert lifespan.container is not None
    assert lifespan.container.greeting() == "hello"
