"""The per-request resources page's examples, run as written against the real PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.urls import path

from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan_client, use_container
from tests import request_scope_app
from tests.conftest import Registry

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "request-scope.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
LOCAL_IMPORT = re.compile(r"^from myproject\..*$", re.MULTILINE)


def _examples() -> dict[str, str]:
    blocks = BLOCK.findall(PAGE.read_text())
    return {
        "containers": next(b for b in blocks if "class Container" in b),
        "views": next(b for b in blocks if "async def transfer" in b),
        "test": next(b for b in blocks if "def test_transfer_without_a_database" in b),
    }


@pytest.fixture
def schema(postgres_dsn: str) -> Iterator[str]:
    """A schema of its own with the page's ``accounts`` table, dropped after the test."""
    name = f"request_scope_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {name}")
        connection.execute(f"CREATE TABLE {name}.accounts (id int PRIMARY KEY, balance int)")
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def page(
    postgres_dsn: str, schema: str, registry: Registry, settings: Any
) -> Iterator[tuple[Runtime, dict[str, Any]]]:
    """The page's container and view, routed at ``/transfer/``, its pool in ``schema``."""
    namespace: dict[str, Any] = {"__name__": "request_scope_page"}
    examples = _examples()
    exec(compile(examples["containers"], "request-scope.md", "exec"), namespace)  # noqa: S102
    views = LOCAL_IMPORT.sub("", examples["views"])
    exec(compile(views, "request-scope.md", "exec"), namespace)  # noqa: S102
    settings.ROOT_URLCONF = "tests.request_scope_app"
    request_scope_app.urlpatterns[:] = [path("transfer/", namespace["transfer"])]
    container = namespace["Container"]()
    separator = "&" if "?" in postgres_dsn else "?"
    dsn = f"{postgres_dsn}{separator}options={quote(f'-c search_path={schema}')}"
    container.config.DATABASE_URL.from_value(dsn)
    with use_container(container) as runtime:
        yield runtime, namespace
    request_scope_app.urlpatterns.clear()


def _balances(postgres_dsn: str, schema: str) -> list[tuple[int, int]]:
    with psycopg.connect(postgres_dsn) as connection:
        query = f"SELECT id, balance FROM {schema}.accounts ORDER BY id"  # noqa: S608 (our name)
        cursor = connection.execute(query)
        return cursor.fetchall()


def _set_balances(postgres_dsn: str, schema: str, first: int, second: int) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        query = f"INSERT INTO {schema}.accounts VALUES (1, %s), (2, %s)"  # noqa: S608 (our name)
        connection.execute(query, (first, second))


async def test_the_transfer_commits_both_updates_after_the_response(
    page: tuple[Runtime, dict[str, Any]], postgres_dsn: str, schema: str
) -> None:
    _set_balances(postgres_dsn, schema, 100, 0)
    async with lifespan_client() as client:
        response = await client.post("/transfer/")
        assert response.status_code == 200
        assert response.json() == {"total": 100}
        assert _balances(postgres_dsn, schema) == [(1, 90), (2, 10)]


async def test_a_failing_transfer_rolls_both_updates_back(
    page: tuple[Runtime, dict[str, Any]], postgres_dsn: str, schema: str
) -> None:
    _set_balances(postgres_dsn, schema, -50, 0)
    async with lifespan_client() as client:
        response = await client.post("/transfer/")
    assert response.status_code == 500
    assert _balances(postgres_dsn, schema) == [(1, -50), (2, 0)]


async def test_the_pages_testing_example_passes(page: tuple[Runtime, dict[str, Any]]) -> None:
    namespace = page[1]
    test = LOCAL_IMPORT.sub("", _examples()["test"])
    exec(compile(test, "request-scope.md", "exec"), namespace)  # noqa: S102
    await namespace["test_transfer_without_a_database"]()
