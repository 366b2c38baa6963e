"""``asgi_lifespan``: what its receivers return is entered, and its state merged.

django-asgi-lifespan's own test here (``test_compat``) checks the internals of its
signal class with a faked Django version; ours checks the behaviour instead.
Theirs awaits only the async receivers of ``asgi_lifespan`` and never calls a
sync one. Ours calls both: a sync receiver runs off the event loop (like the other
lifespan signals' sync receivers) and the factory it returns is entered too, as
the second test shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from lifespan_container.handler import LifespanASGIHandler
from lifespan_container.signals import asgi_lifespan
from lifespan_container.types import State
from tests.lifespan_driver import WAIT


def recording_factory(events: list[str], key: str) -> Callable[[], Any]:
    @asynccontextmanager
    async def factory() -> AsyncIterator[State]:
        events.append("enter")
        try:
            yield {key: f"{key} value"}
        finally:
            events.append("exit")

    return factory


async def run_lifespan(
    application: LifespanASGIHandler, state: dict[str, Any], events: list[str], key: str
) -> None:
    """Start, check the state and ``events``, shut down, check ``events`` again."""
    communicator = ApplicationCommunicator(application, {"type": "lifespan", "state": state})
    await communicator.send_input({"type": "lifespan.startup"})
    assert await communicator.receive_output(WAIT) == {"type": "lifespan.startup.complete"}
    assert events == ["enter"]
    assert state[key] == f"{key} value"
    # The project's registered manager is merged next to it.
    assert "httpx_client_from_user" in state

    await communicator.send_input({"type": "lifespan.shutdown"})
    assert await communicator.receive_output(WAIT) == {"type": "lifespan.shutdown.complete"}
    assert events == ["enter", "exit"]
    await communicator.wait(WAIT)


@pytest.mark.asyncio
async def test_an_async_receivers_factory_is_entered_and_its_state_merged(
    application: LifespanASGIHandler,
) -> None:
    events: list[str] = []
    factory = recording_factory(events, "from_async_receiver")

    async def receiver(**kwargs: Any) -> Callable[[], Any]:
        return factory

    asgi_lifespan.connect(receiver, weak=False)
    try:
        await run_lifespan(application, {}, events, "from_async_receiver")
    finally:
        asgi_lifespan.disconnect(receiver)


@pytest.mark.asyncio
async def test_a_sync_receivers_factory_is_entered_too(application: LifespanASGIHandler) -> None:
    """A deliberate difference: django-asgi-lifespan does not call a sync receiver."""
    events: list[str] = []
    factory = recording_factory(events, "from_sync_receiver")

    def receiver(**kwargs: Any) -> Callable[[], Any]:
        return factory

    asgi_lifespan.connect(receiver, weak=False)
    try:
        await run_lifespan(application, {}, events, "from_sync_receiver")
    finally:
        asgi_lifespan.disconnect(receiver)
