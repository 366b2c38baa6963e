"""django-asgi-lifespan's lifespan managers, through the handler: registry, signal, state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.exceptions import ShutdownFailedError, StartupFailedError
from lifespan_container.handler import LifespanHandler
from lifespan_container.register import register_lifespan_manager, registered_managers
from lifespan_container.runtime import Runtime
from lifespan_container.signals import asgi_lifespan, asgi_shutdown, asgi_startup
from tests.clock import LoopClock, until
from tests.conftest import Connect
from tests.lifespan_driver import SHUTDOWN_COMPLETE, STARTUP, STARTUP_COMPLETE, Exchange, Lifespan

pytestmark = pytest.mark.asyncio

journal: list[str] = []


@pytest.fixture(autouse=True)
def _registry() -> Iterator[None]:
    """What a test registers is forgotten after it; the journal starts empty."""
    saved = list(registered_managers)
    journal.clear()
    yield
    registered_managers.clear()
    for factory in saved:
        registered_managers.add(factory)


@pytest.fixture
def app() -> LifespanHandler:
    """A handler with no container (``CONTAINER: None``), as django-asgi-lifespan users run."""
    return LifespanHandler(Runtime(None))


def phase_of(app: LifespanHandler) -> str:
    """The phase now (read through a function: mypy would keep it narrowed)."""
    return app.runtime.phase


@contextlib.asynccontextmanager
async def greeting() -> AsyncIterator[dict[str, Any]]:
    journal.append("enter greeting")
    yield {"greeting": "hello"}
    journal.append("exit greeting")


@contextlib.asynccontextmanager
async def counter() -> AsyncIterator[dict[str, Any]]:
    journal.append("enter counter")
    yield {"count": 1}
    journal.append("exit counter")


@contextlib.asynccontextmanager
async def also_greeting() -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hi"}


@contextlib.asynccontextmanager
async def broken() -> AsyncIterator[dict[str, Any]]:
    if not journal.count("never"):  # always: a generator must contain a yield
        raise ConnectionError("no broker")
    yield {}  # pragma: no cover


@contextlib.asynccontextmanager
async def not_a_mapping() -> AsyncIterator[Any]:
    yield ["greeting"]


async def test_a_registered_manager_fills_the_state_around_the_receivers(
    app: LifespanHandler, connect: Connect
) -> None:
    """Entered before ``asgi_startup`` (which sees its values), exited after ``asgi_shutdown``."""
    register_lifespan_manager(context_manager=greeting)

    async def on_startup(state: dict[str, Any], **kwargs: Any) -> None:
        journal.append(f"asgi_startup sees {state.get('greeting')}")

    async def on_shutdown(**kwargs: Any) -> None:
        journal.append("asgi_shutdown")

    connect(asgi_startup, on_startup)
    connect(asgi_shutdown, on_shutdown)
    state: dict[str, Any] = {}
    lifespan = Lifespan(app, state)
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert state == {"greeting": "hello"}
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert journal == [
        "enter greeting",
        "asgi_startup sees hello",
        "asgi_shutdown",
        "exit greeting",
    ]


async def test_registering_the_same_factory_twice_enters_it_once(app: LifespanHandler) -> None:
    """A deliberate difference from django-asgi-lifespan, which would enter it twice."""
    register_lifespan_manager(context_manager=greeting)
    register_lifespan_manager(context_manager=greeting)
    lifespan = Lifespan(app, {})
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert journal == ["enter greeting", "exit greeting"]


@pytest.mark.parametrize(
    ("factories", "message"),
    [
        (
            [greeting, also_greeting],
            (
                f"Startup failed: lifespan managers '{__name__}.greeting' and "
                f"'{__name__}.also_greeting' both yielded the key 'greeting' (each key of the "
                "lifespan state comes from one manager: rename one of them)."
            ),
        ),
        (
            [not_a_mapping],
            (
                f"Startup failed: lifespan manager '{__name__}.not_a_mapping' yielded list, not "
                "a mapping: a lifespan manager yields a dict of the values it adds to the "
                "lifespan state."
            ),
        ),
        (
            [greeting, broken],
            (
                f"Startup failed: lifespan manager '{__name__}.broken' raised ConnectionError: "
                "no broker."
            ),
        ),
    ],
    ids=["duplicate key", "not a mapping", "failing enter"],
)
async def test_a_bad_manager_fails_the_startup_naming_it(
    app: LifespanHandler, factories: list[Any], message: str
) -> None:
    """``lifespan.startup.failed`` names the factory; what was entered is exited again."""
    for factory in factories:
        register_lifespan_manager(context_manager=factory)
    state: dict[str, Any] = {}
    lifespan = Lifespan(app, state)
    assert await lifespan.startup() == {"type": "lifespan.startup.failed", "message": message}
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert state == {}
    # The greeting manager, when it entered, was exited again.
    assert journal.count("enter greeting") == journal.count("exit greeting")


async def test_a_failing_startup_receiver_exits_the_managers(
    app: LifespanHandler, connect: Connect
) -> None:
    """All or nothing: an ``asgi_startup`` receiver failing rolls the managers back."""
    register_lifespan_manager(context_manager=greeting)

    async def fail(**kwargs: Any) -> None:
        raise RuntimeError("warm-up failed")

    connect(asgi_startup, fail)
    lifespan = Lifespan(app, {})
    answer = await lifespan.startup()
    assert answer["type"] == "lifespan.startup.failed"
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert journal == ["enter greeting", "exit greeting"]


async def test_a_hung_manager_fails_the_startup_within_the_setting(
    app: LifespanHandler, settings: SettingsWrapper, clock: LoopClock
) -> None:
    """A manager that never enters: ``startup.failed`` names it and ``STARTUP_TIMEOUT``."""
    settings.LIFESPAN_CONTAINER = {"CONTAINER": None, "STARTUP_TIMEOUT": 10}
    never = asyncio.Event()
    started: list[str] = []

    @contextlib.asynccontextmanager
    async def hung() -> AsyncIterator[dict[str, Any]]:
        started.append("hung")
        await never.wait()
        yield {}  # pragma: no cover

    register_lifespan_manager(context_manager=greeting)
    register_lifespan_manager(context_manager=hung)
    lifespan = Lifespan(app, {})
    await lifespan.send(STARTUP)
    await until(lambda: started == ["hung"] and journal == ["enter greeting"], "both entering")
    clock.advance(10)
    assert await lifespan.answer() == {
        "type": "lifespan.startup.failed",
        "message": (
            f"Startup failed: lifespan manager '{__name__}.test_a_hung_manager_fails_the_"
            "startup_within_the_setting.<locals>.hung' did not finish within "
            'LIFESPAN_CONTAINER["STARTUP_TIMEOUT"] (10 s).'
        ),
    }
    with pytest.raises(StartupFailedError):
        await lifespan.finish()
    assert journal == ["enter greeting", "exit greeting"]


async def test_a_failing_exit_is_reported_and_the_others_still_exit(
    app: LifespanHandler,
) -> None:
    """``lifespan.shutdown.failed`` names the manager; every other one exited."""

    @contextlib.asynccontextmanager
    async def bad_exit() -> AsyncIterator[dict[str, Any]]:
        yield {"bad": True}
        raise OSError("socket already closed")

    register_lifespan_manager(context_manager=greeting)
    register_lifespan_manager(context_manager=bad_exit)
    register_lifespan_manager(context_manager=counter)
    lifespan = Lifespan(app, {})
    assert await lifespan.startup() == STARTUP_COMPLETE
    answer = await lifespan.shutdown()
    assert answer == {
        "type": "lifespan.shutdown.failed",
        "message": (
            f"Shutdown finished with errors: lifespan manager '{__name__}.test_a_failing_exit_"
            "is_reported_and_the_others_still_exit.<locals>.bad_exit' raised OSError: socket "
            "already closed."
        ),
    }
    with pytest.raises(ShutdownFailedError):
        await lifespan.finish()
    assert journal == ["enter greeting", "enter counter", "exit counter", "exit greeting"]


async def test_async_and_sync_asgi_lifespan_receivers_give_managers(
    app: LifespanHandler, connect: Connect
) -> None:
    """Each receiver's factory is entered; sync receivers work too (theirs ignores them)."""
    got: list[dict[str, Any]] = []

    async def async_receiver(sender: type, scope: Any, state: Any, **kwargs: Any) -> Any:
        got.append({"sender": sender, "type": scope["type"], "state": state})
        return greeting

    def sync_receiver(**kwargs: Any) -> Any:
        return counter

    connect(asgi_lifespan, async_receiver)
    connect(asgi_lifespan, sync_receiver)
    state: dict[str, Any] = {}
    lifespan = Lifespan(app, state)
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert state == {"greeting": "hello", "count": 1}
    assert got == [{"sender": LifespanHandler, "type": "lifespan", "state": state}]
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert sorted(journal) == ["enter counter", "enter greeting", "exit counter", "exit greeting"]


async def test_an_asgi_lifespan_receiver_returning_no_factory_fails_the_startup(
    app: LifespanHandler, connect: Connect
) -> None:
    """A receiver that returns ``None`` is named in ``startup.failed``, not skipped."""

    async def forgets(**kwargs: Any) -> None:
        return None

    connect(asgi_lifespan, forgets)
    lifespan = Lifespan(app, {})
    answer = await lifespan.startup()
    assert answer["message"] == (
        f"Startup failed: asgi_lifespan receiver '{__name__}.test_an_asgi_lifespan_receiver_"
        "returning_no_factory_fails_the_startup.<locals>.forgets' returned NoneType, not a "
        "lifespan manager factory (a zero-argument callable giving an async context "
        "manager that yields a mapping)."
    )
    with pytest.raises(StartupFailedError):
        await lifespan.finish()


async def test_startup_receivers_may_return_anything(
    app: LifespanHandler, connect: Connect
) -> None:
    """``asgi_startup``'s return values are ignored (django-asgi-lifespan's receivers return
    strings)."""

    async def returns_text(**kwargs: Any) -> str:
        return "started"

    connect(asgi_startup, returns_text)
    lifespan = Lifespan(app, {})
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()


async def test_without_a_server_state_the_managers_state_reaches_the_requests(
    app: LifespanHandler, caplog: pytest.LogCaptureFixture
) -> None:
    """No ``state`` in the lifespan scope: managers still enter, with a warning; each
    request without a state gets a copy of theirs, until the shutdown."""
    register_lifespan_manager(context_manager=greeting)
    lifespan = Lifespan(app, state=None)
    with caplog.at_level(logging.WARNING, "lifespan_container"):
        assert await lifespan.startup() == STARTUP_COMPLETE
    assert "The server gave the lifespan no state" in caplog.text

    exchange = Exchange(app, "/state")
    await exchange.run()
    assert json.loads(exchange.sent[-1]["body"]) == {"state": ["greeting"]}

    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert app.runtime.kept_state is None
    after = Exchange(app, "/state")
    await after.run()
    assert json.loads(after.sent[-1]["body"]) == {"state": []}


async def test_repeated_and_overlapping_lifespans_each_enter_their_own_managers(
    app: LifespanHandler,
) -> None:
    """One handler for a session, as django-asgi-lifespan's suite keeps it: lifespans in turn,
    and two at once (no container), each with its own entered managers and state."""
    register_lifespan_manager(context_manager=greeting)
    first_state: dict[str, Any] = {}
    first = Lifespan(app, first_state)
    assert await first.startup() == STARTUP_COMPLETE
    second_state: dict[str, Any] = {}
    second = Lifespan(app, second_state)
    assert await second.startup() == STARTUP_COMPLETE
    assert first_state == second_state == {"greeting": "hello"}
    assert await first.shutdown() == SHUTDOWN_COMPLETE
    await first.finish()
    assert phase_of(app) == "serving"  # the second still serves
    assert await second.shutdown() == SHUTDOWN_COMPLETE
    await second.finish()

    again = Lifespan(app, {})
    assert await again.startup() == STARTUP_COMPLETE
    assert await again.shutdown() == SHUTDOWN_COMPLETE
    await again.finish()
    entered, exited = "enter greeting", "exit greeting"
    assert journal == [entered, entered, exited, exited, entered, exited]
    assert phase_of(app) == "stopped"


async def test_a_lifespan_the_server_cancels_keeps_no_state_for_later_requests(
    app: LifespanHandler,
) -> None:
    """A server that cancels the lifespan instead of sending the shutdown: the state
    kept for requests goes with it."""
    register_lifespan_manager(context_manager=greeting)
    lifespan = Lifespan(app, state=None)
    assert await lifespan.startup() == STARTUP_COMPLETE
    assert app.runtime.kept_state == {"greeting": "hello"}
    lifespan.communicator.future.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await lifespan.finish()
    assert lifespan.communicator.future.cancelled()
    assert app.runtime.kept_state is None
