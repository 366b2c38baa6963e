"""Pattern 1: a view test with the real lifespan and real resources."""

from __future__ import annotations

import os

import httpx
import pytest
from pytest_django.fixtures import Settings

from weather.tests.conftest import service


@pytest.mark.asyncio
async def test_forecast_calls_the_upstream_api(
    upstream: str, asgi_client: httpx.AsyncClient
) -> None:
    """The real httpx client resource calls a real (local) HTTP server."""
    response = await asgi_client.get("/weather/Oslo")
    assert response.status_code == 200
    body = response.json()
    assert body["city"] == "Oslo"
    assert body["source"] == "upstream"
    assert body["cache"] == "off"


@pytest.mark.asyncio
async def test_stations_come_from_the_database(asgi_client: httpx.AsyncClient) -> None:
    response = await asgi_client.get("/stations/")
    assert response.json()["backend"] == "sqlite"
    assert [s["code"] for s in response.json()["stations"]] == ["OSL", "BGO", "TOS"]


@pytest.mark.asyncio
async def test_every_page_answers(upstream: str, asgi_client: httpx.AsyncClient) -> None:
    for path in ("/", "/weather/Bergen", "/stations/", "/report", "/api/stations/tos"):
        response = await asgi_client.get(path)
        assert response.status_code == 200, (path, response.text)
    assert "Tromsø:" in (await asgi_client.get("/report")).text
    assert (await asgi_client.get("/api/stations/XXX")).status_code == 404


@pytest.mark.asyncio
async def test_the_probes_report_every_resource(asgi_client: httpx.AsyncClient) -> None:
    ready = await asgi_client.get("/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    health = await asgi_client.get("/health/")
    assert health.status_code == 200, health.text
    resources = health.json()["resources"]
    assert {name: r["status"] for name, r in resources.items()} == {
        "http": "ok",
        "db": "ok",
        "cache": "ok",
    }
    assert resources["db"]["latency_ms"] is not None  # the declared SELECT 1 ran
    assert resources["cache"]["latency_ms"] is None  # no REDIS_URL: nothing to check


@pytest.fixture
def redis(settings: Settings) -> None:
    service(6379, "Redis")
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.mark.services
@pytest.mark.asyncio
async def test_stations_from_a_real_postgresql_pool(
    postgres: None, asgi_client: httpx.AsyncClient
) -> None:
    """With DATABASE_URL naming PostgreSQL, the same page uses a real psycopg pool."""
    response = await asgi_client.get("/stations/")
    assert response.json()["backend"] == "postgresql"
    assert {s["code"] for s in response.json()["stations"]} >= {"OSL", "BGO", "TOS"}


@pytest.mark.services
@pytest.mark.asyncio
async def test_forecasts_are_cached_in_redis(
    redis: None, upstream: str, asgi_client: httpx.AsyncClient
) -> None:
    city = f"Test{os.getpid()}"
    first = (await asgi_client.get(f"/weather/{city}")).json()
    second = (await asgi_client.get(f"/weather/{city}")).json()
    assert (first["cache"], second["cache"]) == ("miss", "hit")
