"""Fixtures of the engine's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifespan_container.engine.health_checks import DECLARED


@pytest.fixture(autouse=True)
def declared() -> Iterator[None]:
    """Whatever a test declares (or clears) is undone after it; the modules' own stay."""
    saved = dict(DECLARED._checks)
    yield
    DECLARED._checks.clear()
    DECLARED._checks.update(saved)
