"""drive_lifespan: an ASGI app's lifespan driven as a server would, in the current loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import pytest
from dependency_injector import providers

from lifespan_container.engine import driver
from lifespan_container.engine.driver import drive_lifespan
from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.lifespan import Lifespan
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.protocol import Receive, Send, serve_lifespan
from lifespan_container.exceptions import (
    LifespanContainerError,
    ShutdownFailedError,
    StartupFailedError,
)
from tests.engine.support import Journal, build, tracked

pytestmark = pytest.mark.asyncio

App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def app_of(
    startup: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
) -> App:
    """An ASGI app that answers the lifespan with serve_lifespan."""

    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await serve_lifespan(
            receive, send, startup=lambda: startup(scope["state"]), shutdown=shutdown
        )

    return app


async def test_the_engine_alone_serves_a_lifespan() -> None:
    """serve_lifespan + Lifespan + ResourceLifecycle: the resource is open inside the block."""
    journal = Journal()
    container = build(db=providers.Resource(tracked, journal, "db"))
    lifespan = Lifespan(ResourceLifecycle(container))

    async def startup(state: MutableMapping[str, Any]) -> None:
        await lifespan.start(Limit(10), Limit(10))
        state["db"] = container.db()

    async with drive_lifespan(app_of(startup, lambda: lifespan.stop(Limit(10))), 10) as state:
        assert state == {"db": "db"}
        assert lifespan.phase == "serving"
    assert journal.entries == ["open db", "close db"]


@pytest.mark.parametrize("own", [True, False])
async def test_startup_failed_raises_startup_failed_error(own: bool) -> None:
    """The app's own StartupFailedError comes through; another error is wrapped with its text."""
    error: Exception = StartupFailedError("Startup failed: x.") if own else ValueError("boom")

    async def startup(state: MutableMapping[str, Any]) -> None:
        raise error

    async def shutdown() -> None:
        raise AssertionError  # pragma: no cover

    with pytest.raises(StartupFailedError) as failed:
        async with drive_lifespan(app_of(startup, shutdown), 10):
            raise AssertionError  # pragma: no cover
    if own:
        assert failed.value is error
    else:
        assert str(failed.value) == "ValueError: boom"
        assert failed.value.__cause__ is error


async def test_shutdown_failed_raises_shutdown_failed_error() -> None:
    """A lifespan.shutdown.failed answer raises ShutdownFailedError after the block."""

    async def startup(state: MutableMapping[str, Any]) -> None:
        return None

    async def shutdown() -> None:
        raise OSError("close")

    with pytest.raises(ShutdownFailedError, match=r"^OSError: close$"):
        async with drive_lifespan(app_of(startup, shutdown), 10):
            pass


async def test_a_failing_block_still_shuts_down_and_its_error_is_not_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The block's exception goes on; a failing shutdown after it is logged instead."""
    calls: list[str] = []

    async def startup(state: MutableMapping[str, Any]) -> None:
        return None

    async def shutdown() -> None:
        calls.append("shutdown")
        raise OSError("close")

    with (
        caplog.at_level(logging.ERROR, logger="lifespan_container"),
        pytest.raises(KeyError, match="the test's own"),
    ):
        async with drive_lifespan(app_of(startup, shutdown), 10):
            raise KeyError("the test's own")
    assert calls == ["shutdown"]
    assert "The lifespan shutdown after a failed test failed too" in caplog.text


async def test_an_app_that_does_not_speak_the_lifespan_protocol_is_named() -> None:
    """An app that returns without answering is reported, not waited for."""

    async def app(scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        return None

    with pytest.raises(LifespanContainerError, match="does not speak the ASGI lifespan"):
        async with drive_lifespan(app, 10):
            raise AssertionError  # pragma: no cover


async def test_an_app_that_never_answers_is_given_up_after_the_timeouts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bounded by the timeouts plus the margin; the app's task is cancelled."""
    monkeypatch.setattr(driver, "_MARGIN", 0.2)
    cancelled = asyncio.Event()

    async def app(scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(
        LifespanContainerError, match=r"did not answer 'lifespan.startup' within 0.2 s"
    ):
        async with drive_lifespan(app, 0):
            raise AssertionError  # pragma: no cover
    assert cancelled.is_set()


async def test_an_app_that_answers_failed_and_keeps_running_is_not_waited_for_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver is bounded by the timeouts plus the margin, whatever the app does."""
    monkeypatch.setattr(driver, "_MARGIN", 0.2)

    async def app(scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        await receive()  # a shutdown that a server never sends after a failed startup

    async with asyncio.timeout(1):  # well past 0 s + the margin
        with pytest.raises(StartupFailedError, match="no database"):
            async with drive_lifespan(app, 0):
                raise AssertionError  # pragma: no cover
