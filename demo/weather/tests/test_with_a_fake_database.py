"""Pattern 3: the database replaced by a fake; the real one is never opened."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from pytest_django.fixtures import Settings

from weather.containers import Container


class FakeDatabase:
    backend = "fake"

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.queries: list[str] = []

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        self.queries.append(query)
        return self.rows


@pytest.fixture
def fake_db() -> FakeDatabase:
    return FakeDatabase([("SVB", "Svalbard", 78.22)])


@pytest.fixture
def lifespan_overrides(fake_db: FakeDatabase, settings: Settings) -> Mapping[object, object]:
    # The real database would fail to open here: this test passes because it never opens.
    settings.DATABASE_URL = "postgresql://127.0.0.1:9/nowhere"
    return {Container.db: fake_db}


@pytest.mark.asyncio
async def test_stations_come_from_the_fake(
    asgi_client: httpx.AsyncClient, fake_db: FakeDatabase
) -> None:
    response = await asgi_client.get("/stations/")
    assert response.json() == {
        "backend": "fake",
        "stations": [{"code": "SVB", "name": "Svalbard", "latitude": 78.22}],
    }
    assert len(fake_db.queries) == 1
