"""``asgi_startup`` and ``asgi_shutdown`` reach async and sync receivers, once each.

The lifespan scope carries no ``state`` here, as from a server that has none.
The startup still completes: django-asgi-lifespan then skips the lifespan managers
(logging a warning); ours logs a warning too and enters them into a state the
handler keeps for the requests.
"""

from __future__ import annotations

from unittest.mock import AsyncMock, Mock

import pytest
from asgiref.testing import ApplicationCommunicator

from lifespan_container.handler import LifespanASGIHandler
from lifespan_container.signals import asgi_shutdown, asgi_startup
from tests.lifespan_driver import WAIT


@pytest.mark.asyncio
async def test_async_receivers_are_awaited_once_at_startup_and_at_shutdown(
    application: LifespanASGIHandler,
) -> None:
    on_startup = AsyncMock()
    on_shutdown = AsyncMock()
    asgi_startup.connect(on_startup)
    asgi_shutdown.connect(on_shutdown)
    try:
        on_startup.assert_not_awaited()
        on_shutdown.assert_not_awaited()

        communicator = ApplicationCommunicator(application, {"type": "lifespan"})
        await communicator.send_input({"type": "lifespan.startup"})
        assert await communicator.receive_output(WAIT) == {"type": "lifespan.startup.complete"}
        on_startup.assert_awaited_once()
        on_shutdown.assert_not_awaited()

        await communicator.send_input({"type": "lifespan.shutdown"})
        assert await communicator.receive_output(WAIT) == {"type": "lifespan.shutdown.complete"}
        on_startup.assert_awaited_once()
        on_shutdown.assert_awaited_once()
        await communicator.wait(WAIT)
    finally:
        asgi_startup.disconnect(on_startup)
        asgi_shutdown.disconnect(on_shutdown)
    # Disconnected: nothing calls them again.
    on_startup.assert_awaited_once()
    on_shutdown.assert_awaited_once()


@pytest.mark.asyncio
async def test_sync_receivers_are_called_once_at_startup_and_at_shutdown(
    application: LifespanASGIHandler,
) -> None:
    on_startup = Mock()
    on_shutdown = Mock()
    asgi_startup.connect(on_startup)
    asgi_shutdown.connect(on_shutdown)
    try:
        on_startup.assert_not_called()
        on_shutdown.assert_not_called()

        communicator = ApplicationCommunicator(application, {"type": "lifespan"})
        await communicator.send_input({"type": "lifespan.startup"})
        assert await communicator.receive_output(WAIT) == {"type": "lifespan.startup.complete"}
        on_startup.assert_called_once()
        on_shutdown.assert_not_called()

        await communicator.send_input({"type": "lifespan.shutdown"})
        assert await communicator.receive_output(WAIT) == {"type": "lifespan.shutdown.complete"}
        on_startup.assert_called_once()
        on_shutdown.assert_called_once()
        await communicator.wait(WAIT)
    finally:
        asgi_startup.disconnect(on_startup)
        asgi_shutdown.disconnect(on_shutdown)
    on_startup.assert_called_once()
    on_shutdown.assert_called_once()
