"""Pattern 2: the upstream client replaced by one on httpx.MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
import pytest_asyncio

from weather.containers import Container


def fake_api(request: httpx.Request) -> httpx.Response:
    city = request.url.path.rsplit("/", 1)[-1]
    return httpx.Response(
        200, json={"city": city, "temperature_c": 21, "wind_ms": 0, "source": "mock"}
    )


@pytest_asyncio.fixture
async def fake_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(fake_api), base_url="https://weather.test"
    ) as client:
        yield client


@pytest.fixture
def lifespan_overrides(fake_http: httpx.AsyncClient) -> Mapping[object, object]:
    return {Container.http: fake_http}


@pytest.mark.asyncio
async def test_forecast_uses_the_mock(asgi_client: httpx.AsyncClient) -> None:
    body = (await asgi_client.get("/weather/Oslo")).json()
    assert body == {
        "city": "Oslo",
        "temperature_c": 21,
        "wind_ms": 0,
        "source": "mock",
        "cache": "off",
    }


@pytest.mark.asyncio
async def test_the_sync_view_uses_the_mock_too(asgi_client: httpx.AsyncClient) -> None:
    assert "Oslo: 21 °C, wind 0 m/s" in (await asgi_client.get("/report")).text
