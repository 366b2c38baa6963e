"""Request-scoped resources under the handler: opened once, closed after the response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan_client, use_container
from tests.conftest import Registry
from tests.request_scope_app import Record, make_container, make_views

pytestmark = pytest.mark.asyncio


@pytest.fixture
def record() -> Record:
    return Record()


@pytest.fixture
def runtime(record: Record, registry: Registry, settings: Any) -> Iterator[Runtime]:
    settings.ROOT_URLCONF = "tests.request_scope_app"
    make_views()
    with use_container(make_container(record)) as runtime:
        yield runtime


async def test_nested_resources_open_once_in_order_and_close_in_reverse(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/nested/")
        assert response.status_code == 200
        assert response.json()["same"] is True
        assert response.json()["path"] == "/nested/"
        assert record.names() == ["open outer", "open inner", "close inner", "close outer"]
        assert record.errors == {"inner": None, "outer": None}


async def test_a_view_that_raises_throws_its_exception_in(runtime: Runtime, record: Record) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/fails/")
    assert response.status_code == 500
    assert isinstance(record.errors["outer"], ValueError)


async def test_streaming_keeps_the_value_open_until_the_last_chunk(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/stream/")
        assert response.text == "0:True;1:True;2:True;"
        assert record.names() == ["open outer", "open inner", "close inner", "close outer"]
