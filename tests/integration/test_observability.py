"""Log records and signals for every resource's start, stop and failure."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from dependency_injector import containers, providers
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.exceptions import ShutdownFailedError, StartupFailedError
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.signals import resource_failed, resource_started, resource_stopped
from tests.clock import LoopClock, until
from tests.conftest import Connect
from tests.lifespan_driver import SHUTDOWN, SHUTDOWN_COMPLETE, STARTUP_COMPLETE, Lifespan
from tests.resources import Journal, tracked

pytestmark = pytest.mark.asyncio


class Received:
    """What the receivers got, as (signal, sender, kwargs) in order."""

    def __init__(self, connect: Connect) -> None:
        self.calls: list[tuple[str, object, dict[str, Any]]] = []

        async def on_started(sender: object, **kwargs: Any) -> None:  # an async receiver
            self.calls.append(("started", sender, kwargs))

        def on_stopped(sender: object, **kwargs: Any) -> None:  # a sync receiver
            self.calls.append(("stopped", sender, kwargs))

        async def on_failed(sender: object, **kwargs: Any) -> None:
            self.calls.append(("failed", sender, kwargs))

        connect(resource_started, on_started)
        connect(resource_stopped, on_stopped)
        connect(resource_failed, on_failed)

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {kwargs["name"]: kwargs for signal, _, kwargs in self.calls if signal == kind}


class Services(containers.DeclarativeContainer):
    journal = providers.Object(Journal())
    db = providers.Resource(tracked, journal, "db")
    cache = providers.Resource(tracked, journal, "cache", db)


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "lifespan_container.resources"]


async def test_each_open_and_close_is_a_signal_and_a_structured_log_record(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lifespan_container")
    received = Received(connect)
    lifespan = Lifespan(LifespanHandler(Runtime(Services())))
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()

    assert [(signal, kwargs["name"]) for signal, _, kwargs in received.calls] == [
        ("started", "db"),
        ("started", "cache"),
        ("stopped", "cache"),
        ("stopped", "db"),
    ]
    assert {sender for _, sender, _ in received.calls} == {Services}  # the container class
    for kwargs in [*received.of("started").values(), *received.of("stopped").values()]:
        assert set(kwargs) == {"signal", "name", "duration"}
        assert kwargs["duration"] >= 0

    logged = [(r.resource, r.action, r.outcome) for r in records(caplog)]  # type: ignore[attr-defined]
    assert logged == [
        ("db", "start", "ok"),
        ("cache", "start", "ok"),
        ("cache", "stop", "ok"),
        ("db", "stop", "ok"),
    ]
    for record in records(caplog):
        assert record.levelno == logging.INFO
        assert record.duration >= 0  # type: ignore[attr-defined]
        assert record.getMessage().endswith(" ms.")


async def fails_to_open() -> Any:
    raise ConnectionRefusedError("db down")
    yield  # type: ignore[unreachable]  # pragma: no cover


async def fails_to_close() -> Any:
    yield "value"
    raise OSError("socket already closed")


async def test_failures_and_cancellations_are_signalled_with_their_error(
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    settings: SettingsWrapper,
    clock: LoopClock,
) -> None:
    """A raise is ``failed`` with the error; a step cut off by the time limit is ``cancelled``.

    The failing close must be over before the limit passes: the test waits for its
    signal, then moves the loop's clock past the limit.
    """
    settings.LIFESPAN_CONTAINER = {"CONTAINER": None, "SHUTDOWN_TIMEOUT": 10}
    received = Received(connect)
    never = asyncio.Event()
    journal = Journal()
    built = containers.DynamicContainer()
    built.broken = providers.Resource(fails_to_close)
    built.stuck = providers.Resource(tracked, journal, "stuck", hold_close=never)
    lifespan = Lifespan(LifespanHandler(Runtime(built)))
    assert await lifespan.startup() == STARTUP_COMPLETE
    await lifespan.send(SHUTDOWN)
    # "close stuck" is written before it starts waiting on `never`.
    await until(
        lambda: "close stuck" in journal.entries and "broken" in received.of("failed"),
        "broken failed to close, stuck is closing",
    )
    clock.advance(10)
    answer = await lifespan.answer()
    assert answer["type"] == "lifespan.shutdown.failed"
    # cut off by the 10 s limit
    assert (
        "resource 'stuck' did not close within "
        'LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (10 s)' in answer["message"]
    )
    with pytest.raises(ShutdownFailedError):
        await lifespan.finish()
    failed = received.of("failed")
    assert failed["broken"]["action"] == "stop"
    assert failed["broken"]["outcome"] == "failed"
    assert isinstance(failed["broken"]["error"], OSError)
    assert failed["stuck"]["outcome"] == "cancelled"
    assert failed["stuck"]["error"] is None
    # Wall-clock seconds: the limit passed on the loop's clock, not on this one.
    assert failed["stuck"]["duration"] >= 0

    by_resource = {r.resource: r for r in records(caplog) if r.action == "stop"}  # type: ignore[attr-defined]
    assert by_resource["broken"].levelno == logging.ERROR
    assert by_resource["broken"].outcome == "failed"  # type: ignore[attr-defined]
    assert by_resource["broken"].exc_info is not None  # the traceback is logged
    assert by_resource["stuck"].levelno == logging.WARNING
    assert by_resource["stuck"].outcome == "cancelled"  # type: ignore[attr-defined]

    built = containers.DynamicContainer()
    built.db = providers.Resource(fails_to_open)
    lifespan = Lifespan(LifespanHandler(Runtime(built)))
    assert (await lifespan.startup())["type"] == "lifespan.startup.failed"
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert received.of("failed")["db"]["action"] == "start"
    assert str(received.of("failed")["db"]["error"]) == "db down"


async def test_a_failing_receiver_is_logged_and_changes_nothing(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_metrics(**kwargs: Any) -> None:
        raise RuntimeError("metrics backend down")

    connect(resource_started, broken_metrics)
    built = Services()
    lifespan = Lifespan(LifespanHandler(Runtime(built)))
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert built.db() == "db"
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    failures = [r for r in caplog.records if "of a resource signal failed" in r.getMessage()]
    assert len(failures) == 2  # db and cache
    assert "test_a_failing_receiver_is_logged_and_changes_nothing.<locals>.broken_metrics" in (
        failures[0].getMessage()
    )
