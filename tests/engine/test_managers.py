"""Lifespan managers in the engine: entered after the resources, merged, rolled back, exited."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dependency_injector import providers

from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.lifespan import Lifespan
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.managers import Factories, Factory, LifespanManagers
from lifespan_container.engine.steps import Failure, Tracker
from lifespan_container.exceptions import ShutdownFailedError, StartupFailedError
from tests.clock import LoopClock, until
from tests.engine.support import Journal, build, tracked

pytestmark = pytest.mark.asyncio

STARTUP, SHUTDOWN = Limit(10, "STARTUP"), Limit(10, "SHUTDOWN")
LIMIT = 100
"""A time limit under test: real time never reaches it; the test moves the clock past it."""
M = __name__


def manager(
    journal: Journal,
    name: str,
    value: object = None,
    *,
    enter_error: Exception | None = None,
    exit_error: Exception | None = None,
    enter_waits: asyncio.Event | None = None,
    exit_waits: asyncio.Event | None = None,
) -> Factory:
    """A factory named ``name`` whose manager journals its enter and exit."""

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[object]:
        journal.add(f"enter {name}")
        if enter_waits is not None:
            await enter_waits.wait()
        if enter_error is not None:
            raise enter_error
        yield {name: f"{name} value"} if value is None else value
        if exit_waits is not None:
            journal.add(f"exiting {name}")
            await exit_waits.wait()
        journal.add(f"exit {name}")
        if exit_error is not None:
            raise exit_error

    factory.__qualname__ = name
    return factory


def resources(journal: Journal) -> ResourceLifecycle:
    return ResourceLifecycle(build(db=providers.Resource(tracked, journal, "db")))


def phase_of(lifespan: Lifespan) -> str:
    return lifespan.phase


async def test_managers_enter_after_the_resources_and_exit_before_they_close() -> None:
    """The order: resources open, managers enter; managers exit, resources close."""
    journal = Journal()
    state: dict[str, Any] = {}
    managers = LifespanManagers(state, [manager(journal, "a"), manager(journal, "b")])
    lifespan = Lifespan(resources(journal))

    await lifespan.start(STARTUP, SHUTDOWN, managers=managers)
    assert journal.entries[0] == "open db"
    assert sorted(journal.entries[1:]) == ["enter a", "enter b"]
    assert state == {"a": "a value", "b": "b value"}

    journal.entries.clear()
    await lifespan.stop(SHUTDOWN, managers=managers)
    assert journal.entries == ["exit b", "exit a", "close db"]  # last given, first exited


async def test_the_same_factory_given_twice_is_entered_once() -> None:
    """A factory registered (or returned) twice is one manager, not two."""
    journal = Journal()
    factory = manager(journal, "a")
    managers = LifespanManagers({}, [factory, factory])
    assert await managers.enter(Tracker()) == []
    assert journal.entries == ["enter a"]
    assert await managers.exit(SHUTDOWN) == []
    assert journal.entries == ["enter a", "exit a"]


async def test_the_registry_keeps_each_factory_once_and_can_forget_them() -> None:
    """``Factories``: added once in first-registration order; ``remove`` and ``clear``."""
    journal = Journal()
    first, second = manager(journal, "a"), manager(journal, "b")
    registry = Factories()
    registry.add(first)
    registry.add(second)
    registry.add(first)
    assert list(registry) == [first, second]
    registry.remove(first)
    assert list(registry) == [second]
    assert first not in registry
    registry.clear()
    assert len(registry) == 0
    with pytest.raises(TypeError, match="zero-argument callable"):
        registry.add("not a factory")  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["db", "password"])  # a key the redaction must not eat
async def test_two_managers_yielding_one_key_fail_the_startup_naming_both(key: str) -> None:
    """A key yielded twice is a startup failure naming both factories and the key."""
    journal = Journal()
    managers = LifespanManagers(
        {}, [manager(journal, "a", {key: 1}), manager(journal, "b", {key: 2})]
    )
    lifespan = Lifespan(resources(journal))
    with pytest.raises(StartupFailedError) as raised:
        await lifespan.start(STARTUP, SHUTDOWN, managers=managers)
    assert str(raised.value) == (
        f"Startup failed: lifespan managers '{M}.a' and '{M}.b' both "
        f"yielded the key {key!r} (each key of the lifespan state comes from one manager: "
        "rename one of them)."
    )
    assert managers.state == {}
    assert journal.entries[-3:] == ["exit b", "exit a", "close db"]


async def test_a_manager_yielding_a_non_mapping_fails_the_startup_and_is_exited() -> None:
    """Yielding a list is a startup failure saying so; the manager is exited again."""
    journal = Journal()
    managers = LifespanManagers({}, [manager(journal, "a", ["db"])])
    lifespan = Lifespan(None)
    with pytest.raises(StartupFailedError) as raised:
        await lifespan.start(STARTUP, SHUTDOWN, managers=managers)
    assert str(raised.value) == (
        f"Startup failed: lifespan manager '{M}.a' yielded list, not a mapping: a lifespan "
        "manager yields a dict of the values it adds to the lifespan state."
    )
    assert journal.entries == ["enter a", "exit a"]
    assert phase_of(lifespan) == "stopped"


async def test_a_failing_enter_exits_the_entered_managers_then_closes_the_resources() -> None:
    """All or nothing: the managers that entered are exited, then the resources close."""
    journal = Journal()
    entered = asyncio.Event()
    good = manager(journal, "good")
    bad = manager(journal, "bad", enter_error=RuntimeError("no token"), enter_waits=entered)
    managers = LifespanManagers({}, [good, bad])
    lifespan = Lifespan(resources(journal))

    starting = asyncio.ensure_future(lifespan.start(STARTUP, SHUTDOWN, managers=managers))
    await until(lambda: "enter good" in journal.entries, "the good manager entered")
    entered.set()
    with pytest.raises(StartupFailedError) as raised:
        await starting
    assert str(raised.value) == (
        f"Startup failed: lifespan manager '{M}.bad' raised RuntimeError: no token."
    )
    assert journal.entries[-2:] == ["exit good", "close db"]


async def test_a_failing_receiver_exits_the_managers_then_closes_the_resources() -> None:
    """A receiver failing after the managers entered rolls them back first."""
    journal = Journal()
    managers = LifespanManagers({}, [manager(journal, "a")])
    lifespan = Lifespan(resources(journal))
    seen: list[dict[str, Any]] = []

    async def receivers(tracker: Tracker, limit: Limit) -> list[Failure]:
        seen.append(dict(managers.state))  # the receivers see the managers' state
        return [Failure("receiver 'warm'", RuntimeError("cold"))]

    with pytest.raises(StartupFailedError, match="receiver 'warm' raised RuntimeError: cold"):
        await lifespan.start(STARTUP, SHUTDOWN, receivers, managers)
    assert seen == [{"a": "a value"}]
    assert journal.entries == ["open db", "enter a", "exit a", "close db"]


async def test_a_startup_timeout_names_the_hung_manager_and_rolls_back(clock: LoopClock) -> None:
    """A manager that never enters is cut off by the startup limit; the rest roll back."""
    journal = Journal()
    never = asyncio.Event()
    managers = LifespanManagers(
        {}, [manager(journal, "quick"), manager(journal, "hung", enter_waits=never)]
    )
    lifespan = Lifespan(resources(journal))
    starting = asyncio.ensure_future(
        lifespan.start(Limit(LIMIT, "STARTUP"), SHUTDOWN, managers=managers)
    )
    await until(lambda: {"enter quick", "enter hung"} <= set(journal.entries), "both entering")
    await asyncio.sleep(0)  # the quick one records its value
    clock.advance(LIMIT)
    with pytest.raises(StartupFailedError) as raised:
        await starting
    assert str(raised.value) == (
        f"Startup failed: lifespan manager '{M}.hung' did not finish within STARTUP."
    )
    assert journal.entries[-2:] == ["exit quick", "close db"]


async def test_every_manager_is_exited_when_one_exit_fails() -> None:
    """Exit never stops half way: the failures are reported together, resources close."""
    journal = Journal()
    managers = LifespanManagers(
        {},
        [
            manager(journal, "a", exit_error=OSError("a broke")),
            manager(journal, "b"),
            manager(journal, "c", exit_error=ValueError("c broke")),
        ],
    )
    lifespan = Lifespan(resources(journal))
    await lifespan.start(STARTUP, SHUTDOWN, managers=managers)
    with pytest.raises(ShutdownFailedError) as raised:
        await lifespan.stop(SHUTDOWN, managers=managers)
    assert str(raised.value) == (
        f"Shutdown finished with errors: lifespan manager '{M}.c' raised ValueError: c broke; "
        f"lifespan manager '{M}.a' raised OSError: a broke."
    )
    assert journal.entries[-4:] == ["exit c", "exit b", "exit a", "close db"]


async def test_a_hung_exit_is_bounded_and_the_resources_still_close(clock: LoopClock) -> None:
    """A manager that never exits is cut off with time kept for the one after it
    (a quarter of the managers' half: n=2), which exits; the resources close after."""
    journal = Journal()
    never = asyncio.Event()
    managers = LifespanManagers(
        {}, [manager(journal, "first"), manager(journal, "last", exit_waits=never)]
    )
    lifespan = Lifespan(resources(journal))
    await lifespan.start(STARTUP, SHUTDOWN, managers=managers)
    stopping = asyncio.ensure_future(lifespan.stop(Limit(LIMIT, "SHUTDOWN"), managers=managers))
    await until(lambda: "exiting last" in journal.entries, "the last manager is exiting")
    clock.advance(LIMIT / 2 * 3 / 4)  # its own: the managers' half, less a quarter of it
    with pytest.raises(ShutdownFailedError) as raised:
        await stopping
    assert str(raised.value) == (
        f"Shutdown finished with errors: lifespan manager '{M}.last' did not finish within "
        f"{LIMIT / 2 * 3 / 4:g} s of SHUTDOWN, the rest kept for the managers after it."
    )
    assert journal.entries[-2:] == ["exit first", "close db"]


async def test_failures_collecting_the_factories_fail_the_startup() -> None:
    """What ``collect`` reports (a failing signal receiver) fails the startup."""
    journal = Journal()

    async def collect(tracker: Tracker) -> tuple[list[Factory], list[Failure]]:
        return [manager(journal, "late")], [Failure("receiver 'r'", reason="returned None")]

    lifespan = Lifespan(None)
    managers = LifespanManagers({}, [manager(journal, "a")], collect=collect)
    with pytest.raises(StartupFailedError, match="receiver 'r' returned None"):
        await lifespan.start(STARTUP, SHUTDOWN, managers=managers)
    assert journal.entries == []


async def test_overlapping_lifespans_without_a_container_each_fill_their_own_state() -> None:
    """With no container, two lifespans may overlap; each enters its own managers."""
    journal = Journal()
    factory = manager(journal, "a")
    lifespan = Lifespan(None)
    one, two = LifespanManagers({}, [factory]), LifespanManagers({}, [factory])
    await lifespan.start(STARTUP, SHUTDOWN, managers=one)
    await lifespan.start(STARTUP, SHUTDOWN, managers=two)
    assert one.state == two.state == {"a": "a value"}
    assert one.state is not two.state
    await lifespan.stop(SHUTDOWN, managers=one)
    assert phase_of(lifespan) == "serving"  # the other one still serves
    await lifespan.stop(SHUTDOWN, managers=two)
    assert phase_of(lifespan) == "stopped"
    assert journal.entries == ["enter a", "enter a", "exit a", "exit a"]
