"""The index page: the lifespan phase and every resource's health, as a person sees them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from pytest_django.fixtures import Settings

from lifespan_container.runtime import get_runtime
from lifespan_container.testing import Overrides
from weather.containers import Container
from weather.views import PAGES


def resource_names() -> tuple[str, ...]:
    lifecycle = get_runtime().lifecycle
    assert lifecycle is not None
    return lifecycle.names


def row(page: str, name: str) -> str:
    """The HTML of the table row of resource ``name``."""
    start = page.index(f'id="resource-{name}"')
    return page[start : page.index("</tr>", start)]


class UnreachableDatabase:
    """A database that stopped answering: the declared check's SELECT 1 raises."""

    backend = "unreachable"

    async def fetch(self, query: str, *args: Any) -> Sequence[tuple[Any, ...]]:
        raise ConnectionRefusedError("the database does not answer")


@pytest.mark.asyncio
async def test_the_page_shows_the_phase_every_resource_and_the_pages(
    asgi_client: httpx.AsyncClient,
) -> None:
    response = await asgi_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "no-store" in response.headers["cache-control"]  # always checked afresh
    page = response.text
    assert '<span id="phase" class="badge good">serving</span>' in page
    assert set(resource_names()) == {"http", "db", "cache"}
    for name in resource_names():
        assert f"<code>{name}</code>" in row(page, name)
        assert '<span class="badge good">open</span>' in row(page, name)
        assert '<span class="badge good">ok</span>' in row(page, name)
    assert " ms</td>" in row(page, "db")  # the declared SELECT 1 ran and took time
    assert "every health check passes" in page
    for url, text in PAGES:
        assert f'<a href="{url}"><code>{url}</code></a>: {text}' in page
    assert "checked by" not in page  # DEBUG is off in tests: no check details


@pytest.mark.asyncio
async def test_the_page_as_json(asgi_client: httpx.AsyncClient) -> None:
    by_query = (await asgi_client.get("/", params={"format": "json"})).json()
    by_header = await asgi_client.get("/", headers={"Accept": "application/json"})
    assert by_header.headers["content-type"] == "application/json"
    assert by_header.json()["phase"] == by_query["phase"] == "serving"
    resources = by_query["resources"]
    assert list(resources) == list(resource_names())
    states = {name: (r["state"], r["status"]) for name, r in resources.items()}
    assert states == dict.fromkeys(resource_names(), ("open", "ok"))
    assert [page["url"] for page in by_query["pages"]] == [url for url, _ in PAGES]


@pytest.mark.asyncio
async def test_a_failing_check_shows_and_the_page_still_answers(
    asgi_client: httpx.AsyncClient, overrides: Overrides, settings: Settings
) -> None:
    """The database stops answering while serving: the page says so, with a 200."""
    overrides(Container.db, UnreachableDatabase())
    settings.DEBUG = True  # the page then shows what was checked and how it failed
    response = await asgi_client.get("/")
    assert response.status_code == 200
    page = response.text
    assert '<span id="phase" class="badge good">serving</span>' in page
    db = row(page, "db")
    assert '<span class="badge bad">failing</span>' in db
    assert "ConnectionRefusedError: the database does not answer" in db
    assert "<code>weather.containers.database_answers</code>" in db
    for name in set(resource_names()) - {"db"}:
        assert '<span class="badge good">ok</span>' in row(page, name)
    assert "1 of 3 failing their health check" in page
    assert (await asgi_client.get("/health/")).status_code == 503  # the probe, unlike the page
    body = (await asgi_client.get("/?format=json")).json()
    assert body["resources"]["db"]["status"] == "failing"


@pytest.mark.asyncio
async def test_without_a_lifespan_the_page_says_nothing_is_open(async_client: Any) -> None:
    """Under a server that sends no lifespan (runserver, daphne) the page still answers."""
    response = await async_client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    phase = get_runtime().phase
    assert phase in {"idle", "stopped"}  # stopped: an earlier test's lifespan has run
    assert f'<span id="phase" class="badge off">{phase}</span>' in page
    for name in resource_names():
        assert row(page, name).count('<span class="badge off">not open</span>') == 2
    assert "no health check runs while the resources are closed" in page
