"""A lifespan run through the handler, and requests through ``LifespanAwareAsyncClient``.

Before the shutdown both views answer 200 (their client open, the upstream
reached); after it, 500 saying the client is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgiref.testing import ApplicationCommunicator

from lifespan_container.handler import LifespanASGIHandler
from lifespan_container.testing import LifespanAwareAsyncClient
from tests.dal_suite.support import UpstreamThread
from tests.lifespan_driver import WAIT

STARTUP_COMPLETE = {"type": "lifespan.startup.complete"}
SHUTDOWN_COMPLETE = {"type": "lifespan.shutdown.complete"}


@pytest.fixture
def scope_state() -> dict[str, Any]:
    return {}


@pytest.fixture
def async_client(scope_state: dict[str, Any]) -> LifespanAwareAsyncClient:
    return LifespanAwareAsyncClient(state=scope_state)


@pytest_asyncio.fixture
async def communicator(
    application: LifespanASGIHandler, scope_state: dict[str, Any]
) -> AsyncIterator[ApplicationCommunicator]:
    communicator = ApplicationCommunicator(application, {"type": "lifespan", "state": scope_state})
    yield communicator
    # A test that failed half way still ends its lifespan (bounded).
    if not communicator.future.done():
        await communicator.send_input({"type": "lifespan.shutdown"})
    await communicator.wait(WAIT)


@pytest.mark.asyncio
async def test_the_app_config_client_serves_until_the_shutdown_closes_it(
    communicator: ApplicationCommunicator,
    async_client: LifespanAwareAsyncClient,
    upstream: UpstreamThread,
) -> None:
    await communicator.send_input({"type": "lifespan.startup"})
    assert await communicator.receive_output(WAIT) == STARTUP_COMPLETE

    before = upstream.requests
    response = await async_client.get("/client-from-app-config")
    assert response.status_code == HTTPStatus.OK
    assert response.content.decode().startswith("OK app config")
    assert upstream.requests == before + 1

    await communicator.send_input({"type": "lifespan.shutdown"})
    assert await communicator.receive_output(WAIT) == SHUTDOWN_COMPLETE

    response = await async_client.get("/client-from-app-config")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "HTTPX Client from app config is closed" in response.content.decode()
    assert upstream.requests == before + 1


@pytest.mark.asyncio
async def test_the_state_client_serves_until_the_shutdown_closes_it(
    communicator: ApplicationCommunicator,
    async_client: LifespanAwareAsyncClient,
    scope_state: dict[str, Any],
    upstream: UpstreamThread,
) -> None:
    await communicator.send_input({"type": "lifespan.startup"})
    assert await communicator.receive_output(WAIT) == STARTUP_COMPLETE
    client = scope_state["httpx_client_from_user"]
    assert isinstance(client, httpx.AsyncClient)

    before = upstream.requests
    response = await async_client.get("/client-from-scope-state")
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert body.startswith("OK state")
    # The view used the very client the lifespan put in the state.
    assert body.endswith(f"client {id(client)}")
    assert upstream.requests == before + 1

    await communicator.send_input({"type": "lifespan.shutdown"})
    assert await communicator.receive_output(WAIT) == SHUTDOWN_COMPLETE
    assert client.is_closed

    response = await async_client.get("/client-from-scope-state")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "HTTPX Client from state is closed" in response.content.decode()
    assert upstream.requests == before + 1
