"""A factory registered twice is entered once per lifespan (django-asgi-lifespan: twice).

The project's app registers ``httpx_lifespan_manager`` twice on purpose.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgiref.testing import ApplicationCommunicator

from lifespan_container.handler import LifespanASGIHandler
from tests.dal_project.test_app.handlers import Entries
from tests.lifespan_driver import WAIT


def closed(client: httpx.AsyncClient) -> bool:
    # A call, not the property: mypy would keep the narrowing across the shutdown.
    return client.is_closed


@pytest.mark.asyncio
async def test_a_factory_registered_twice_is_entered_once(
    application: LifespanASGIHandler,
) -> None:
    state: dict[str, Any] = {}
    before = Entries.count
    communicator = ApplicationCommunicator(application, {"type": "lifespan", "state": state})
    await communicator.send_input({"type": "lifespan.startup"})
    assert await communicator.receive_output(WAIT) == {"type": "lifespan.startup.complete"}
    assert Entries.count == before + 1
    client = state["httpx_client_from_user"]
    assert isinstance(client, httpx.AsyncClient)
    assert not closed(client)

    await communicator.send_input({"type": "lifespan.shutdown"})
    assert await communicator.receive_output(WAIT) == {"type": "lifespan.shutdown.complete"}
    assert closed(client)
    assert Entries.count == before + 1
    await communicator.wait(WAIT)
