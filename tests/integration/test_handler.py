"""The ASGI lifespan protocol, as the handler speaks it (driven deterministically)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.exceptions import (
    ShutdownFailedError,
    StartupFailedError,
    UnsupportedScopeError,
)
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.signals import asgi_shutdown, asgi_startup
from tests.clock import LoopClock, until
from tests.conftest import Connect
from tests.lifespan_driver import (
    SHUTDOWN,
    SHUTDOWN_COMPLETE,
    STARTUP,
    STARTUP_COMPLETE,
    WAIT,
    Lifespan,
    http_scope,
)

pytestmark = pytest.mark.asyncio

calls: list[tuple[str, dict[str, Any]]] = []
failed: list[str] = []
"""The failing receivers below that ran (and raised)."""
never = asyncio.Event  # instantiated per test: an event that nobody sets


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()
    failed.clear()


@pytest.fixture
def app() -> LifespanHandler:
    """A handler with no container: only the signals run."""
    return LifespanHandler(Runtime(None))


def set_timeouts(settings: SettingsWrapper, startup: float = 10.0, shutdown: float = 10.0) -> None:
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": None,
        "STARTUP_TIMEOUT": startup,
        "SHUTDOWN_TIMEOUT": shutdown,
    }


async def record_async(**kwargs: Any) -> None:
    calls.append(("async", kwargs))


def record_sync(**kwargs: Any) -> None:
    kwargs["thread"] = threading.get_ident()
    calls.append(("sync", kwargs))


async def fail_async(**kwargs: Any) -> None:
    failed.append("fail_async")
    raise RuntimeError("warm-up failed")


def fail_sync(**kwargs: Any) -> None:
    failed.append("fail_sync")
    raise ValueError("bad config")


async def test_startup_and_shutdown_send_signals_and_complete(
    app: LifespanHandler, connect: Connect
) -> None:
    """Startup and shutdown each answer `complete` after every receiver ran once."""
    connect(asgi_startup, record_async)
    connect(asgi_startup, record_sync)
    connect(asgi_shutdown, record_async)
    state: dict[str, Any] = {}
    lifespan = Lifespan(app, state=state)

    assert await lifespan.startup() == STARTUP_COMPLETE
    assert sorted(kind for kind, _ in calls) == ["async", "sync"]
    for _, kwargs in calls:
        assert kwargs["signal"] is asgi_startup
        assert kwargs["sender"] is LifespanHandler
        assert kwargs["state"] is state
        assert kwargs["scope"]["type"] == "lifespan"

    calls.clear()
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    assert [(kind, kwargs["signal"]) for kind, kwargs in calls] == [("async", asgi_shutdown)]
    await lifespan.finish()


async def test_sync_receivers_run_off_the_event_loop(
    app: LifespanHandler, connect: Connect
) -> None:
    """A sync receiver runs in a worker thread, not in the thread of the event loop."""
    connect(asgi_startup, record_sync)
    lifespan = Lifespan(app)
    assert await lifespan.startup() == STARTUP_COMPLETE
    [(_, kwargs)] = calls
    assert kwargs["thread"] != threading.get_ident()
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()


@pytest.mark.parametrize(
    ("receiver", "error"),
    [
        (fail_async, "RuntimeError: warm-up failed"),
        (fail_sync, "ValueError: bad config"),
    ],
    ids=["async", "sync"],
)
async def test_failing_startup_receiver_sends_startup_failed_then_raises(
    app: LifespanHandler,
    connect: Connect,
    receiver: Any,
    error: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing receiver becomes `startup.failed` naming it and its error, then a raise."""
    connect(asgi_startup, receiver)
    lifespan = Lifespan(app)

    assert await lifespan.startup() == {
        "type": "lifespan.startup.failed",
        "message": f"Startup failed: receiver '{__name__}.{receiver.__name__}' raised {error}.",
    }
    with pytest.raises(StartupFailedError) as raised:
        await lifespan.finish()
    assert type(raised.value.__cause__) is type(raised.value.failures[0].error)
    # The traceback is in the log, under the receiver's name.
    [record] = [r for r in caplog.records if r.exc_info and receiver.__name__ in r.getMessage()]
    assert record.levelno == logging.ERROR


async def test_startup_receiver_that_never_finishes_times_out(
    app: LifespanHandler, connect: Connect, settings: SettingsWrapper, clock: LoopClock
) -> None:
    """A hung startup becomes `startup.failed` naming what it was still waiting for."""
    set_timeouts(settings, startup=10)
    event = never()
    finished: list[str] = []

    async def hang(**kwargs: Any) -> None:
        await event.wait()

    async def quick(**kwargs: Any) -> None:
        finished.append("quick")

    connect(asgi_startup, hang)
    connect(asgi_startup, quick)
    lifespan = Lifespan(app)

    await lifespan.send(STARTUP)
    await until(lambda: finished == ["quick"], "the quick receiver finished")
    clock.advance(10)
    assert await lifespan.answer() == {
        "type": "lifespan.startup.failed",
        "message": (
            f"Startup failed: receiver '{__name__}."
            "test_startup_receiver_that_never_finishes_times_out.<locals>.hang'"
            ' did not finish within LIFESPAN_CONTAINER["STARTUP_TIMEOUT"] (10 s).'
        ),
    }
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert finished == ["quick"]


async def test_shutdown_receiver_that_never_finishes_times_out(
    app: LifespanHandler, connect: Connect, settings: SettingsWrapper, clock: LoopClock
) -> None:
    """A hung receiver is cut off at half the shutdown time; the others' results stay.

    The other receivers run, and a failure among them is reported with the hang.
    """
    set_timeouts(settings, shutdown=20)
    event = never()

    async def hang(**kwargs: Any) -> None:
        await event.wait()

    connect(asgi_shutdown, hang)
    connect(asgi_shutdown, record_async)
    connect(asgi_shutdown, fail_async)
    lifespan = Lifespan(app)
    assert await lifespan.startup() == STARTUP_COMPLETE

    await lifespan.send(SHUTDOWN)
    await until(lambda: len(calls) == 1 and failed == ["fail_async"], "the other receivers ran")
    clock.advance(10)  # half of SHUTDOWN_TIMEOUT: the receivers' share
    assert await lifespan.answer() == {
        "type": "lifespan.shutdown.failed",
        "message": (
            f"Shutdown finished with errors: receiver '{__name__}."
            "test_shutdown_receiver_that_never_finishes_times_out.<locals>"
            ".hang' did not finish within 10 s, half of "
            'LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (20 s); '
            f"receiver '{__name__}.fail_async' raised RuntimeError: warm-up failed."
        ),
    }
    with pytest.raises(ShutdownFailedError):
        await lifespan.finish()
    assert [kind for kind, _ in calls] == ["async"]


async def test_failing_shutdown_receivers_are_all_reported(
    app: LifespanHandler, connect: Connect
) -> None:
    """Every shutdown receiver runs even when others fail; all failures are reported."""
    connect(asgi_shutdown, fail_async)
    connect(asgi_shutdown, fail_sync)
    connect(asgi_shutdown, record_async)
    lifespan = Lifespan(app)
    assert await lifespan.startup() == STARTUP_COMPLETE

    assert await lifespan.shutdown() == {
        "type": "lifespan.shutdown.failed",
        "message": (
            "Shutdown finished with errors: "
            f"receiver '{__name__}.fail_sync' raised ValueError: bad config; "
            f"receiver '{__name__}.fail_async' raised RuntimeError: warm-up failed."
        ),
    }
    with pytest.raises(ShutdownFailedError):
        await lifespan.finish()
    assert [kind for kind, _ in calls] == ["async"]


async def test_unknown_message_types_are_ignored(
    app: LifespanHandler, caplog: pytest.LogCaptureFixture
) -> None:
    """A message type the protocol does not define is logged and the loop goes on."""
    lifespan = Lifespan(app)
    await lifespan.communicator.send_input({"type": "lifespan.reload"})
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert "unknown lifespan message of type 'lifespan.reload'" in caplog.text


async def test_no_state_from_the_server(app: LifespanHandler, connect: Connect) -> None:
    """Without `scope["state"]`, receivers get `state=None` and startup completes."""
    connect(asgi_startup, record_async)
    lifespan = Lifespan(app, state=None)
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert calls[0][1]["state"] is None
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()


async def test_shutdown_before_startup_completes_at_once(
    app: LifespanHandler, connect: Connect
) -> None:
    """A shutdown with nothing started is answered `complete` without sending signals."""
    connect(asgi_shutdown, record_async)
    lifespan = Lifespan(app)
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert calls == []


async def test_a_second_startup_is_ignored(app: LifespanHandler, connect: Connect) -> None:
    """Startup runs once per lifespan connection, even if the server repeats it."""
    connect(asgi_startup, record_async)
    lifespan = Lifespan(app)
    assert await lifespan.startup() == STARTUP_COMPLETE
    await lifespan.communicator.send_input({"type": "lifespan.startup"})
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert len(calls) == 1


async def test_bad_timeout_setting_fails_startup_naming_the_setting(
    app: LifespanHandler, settings: SettingsWrapper
) -> None:
    """A broken setting at startup becomes `startup.failed` that names it and the fix."""
    set_timeouts(settings, startup=0)
    lifespan = Lifespan(app)
    answer = await lifespan.startup()
    assert answer["type"] == "lifespan.startup.failed"
    assert answer["message"].startswith(
        "ImproperlyConfigured: settings.LIFESPAN_CONTAINER['STARTUP_TIMEOUT'] must be a "
        "positive number of seconds, not 0."
    )
    assert "(lifespan_container.E003)" in answer["message"]
    with pytest.raises(Exception, match="STARTUP_TIMEOUT"):
        await lifespan.finish()


async def test_http_goes_to_django_unchanged(app: LifespanHandler) -> None:
    """An `http` scope is served by Django's handler: status, headers and body."""
    scope = http_scope("/hello")
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(WAIT)
    body = await communicator.receive_output(WAIT)
    await communicator.wait(WAIT)
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert body["body"] == b"hello"


async def test_websocket_gets_an_error_that_says_how_to_route_it(app: LifespanHandler) -> None:
    """A websocket scope raises an error that points to Channels' ProtocolTypeRouter."""
    communicator = ApplicationCommunicator(app, {"type": "websocket", "path": "/ws"})
    with pytest.raises(UnsupportedScopeError, match="ProtocolTypeRouter") as raised:
        await communicator.wait(WAIT)
    assert isinstance(raised.value, ValueError)
    # Django's own message, which its tests and its users match on, comes first.
    assert str(raised.value).startswith(
        "Django can only handle ASGI/HTTP connections, not websocket. "
    )
