"""What the engine's tests share: containers built in place, a journal, a listener."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from dependency_injector import containers, providers

from lifespan_container.engine import health
from lifespan_container.engine.events import ResourceEvent
from lifespan_container.engine.lifecycle import ResourceLifecycle


def build(**members: providers.Provider[Any]) -> containers.DynamicContainer:
    """A container with ``members`` as its providers, in that order."""
    built = containers.DynamicContainer()
    for name, provider in members.items():
        setattr(built, name, provider)
    return built


class Journal:
    """What the resources did, in order (appended from the loop and from threads)."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def add(self, entry: str) -> None:
        self.entries.append(entry)

    def opened(self) -> list[str]:
        return [e.removeprefix("open ") for e in self.entries if e.startswith("open ")]

    def closed(self) -> list[str]:
        return [e.removeprefix("close ") for e in self.entries if e.startswith("close ")]


async def tracked(journal: Journal, name: str, *dependencies: object) -> AsyncIterator[str]:
    """An async resource that journals its opening and closing; its value is its name."""
    journal.add(f"open {name}")
    yield name
    journal.add(f"close {name}")


def tracked_sync(journal: Journal, name: str, *dependencies: object) -> Iterator[str]:
    """A sync resource (opened in a thread) that journals its opening and closing."""
    journal.add(f"open {name}")
    yield name
    journal.add(f"close {name}")


async def hanging(started: asyncio.Event, cancelled: asyncio.Event) -> AsyncIterator[str]:
    """An async resource that never opens; it notes when it starts and when it is cancelled."""
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.set()
        raise
    yield "never"  # pragma: no cover


class Events:
    """A listener that keeps every event and sets an asyncio.Event per (name, action, outcome)."""

    def __init__(self) -> None:
        self.seen: list[ResourceEvent] = []
        self._waiting: dict[tuple[str, str, str], asyncio.Event] = {}

    async def __call__(self, event: ResourceEvent) -> None:
        self.seen.append(event)
        self.when(event.name, event.action, event.outcome).set()

    def when(self, name: str, action: str, outcome: str) -> asyncio.Event:
        return self._waiting.setdefault((name, action, outcome), asyncio.Event())

    def summary(self) -> list[tuple[str, str, str]]:
        return [(e.name, e.action, e.outcome) for e in self.seen]


def wait_in_thread(event: threading.Event) -> None:
    """Block a resource's thread until ``event`` is set (bounded, so that no test hangs)."""
    assert event.wait(10), "the test never released this thread"


def throw(error: BaseException) -> None:
    """Raise ``error`` (a function, so that a generator's ``yield`` after it type-checks)."""
    raise error


# Read through functions: mypy would keep a property narrowed across awaits.
def is_started(lifecycle: ResourceLifecycle) -> bool:
    """``lifecycle.started`` now."""
    return lifecycle.started


def loop_of(lifecycle: ResourceLifecycle) -> asyncio.AbstractEventLoop | None:
    """``lifecycle.loop`` now."""
    return lifecycle.loop


def is_in_use(lifecycle: ResourceLifecycle) -> bool:
    """``lifecycle.in_use`` now."""
    return lifecycle.in_use


# -- health check runs --------------------------------------------------------------------


class Tally:
    """Counts the runs of each check; sync checks run in threads of their own."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str) -> None:
        with self._lock:
            self.runs[name] += 1


def waiting(lifecycle: ResourceLifecycle | None) -> int:
    """How many probes wait for a run of a check of ``lifecycle`` now."""
    monitor = health._monitors.get(lifecycle) if lifecycle else None
    runs = monitor._runs.values() if monitor else ()
    return sum(run.waiters for run in runs)


def settled(lifecycle: ResourceLifecycle, check: Callable[[Any], object]) -> bool:
    """Whether a run of ``check`` on ``lifecycle`` has its outcome now.

    Later than the check's code returning: a sync check's result still has to reach
    the loop from its thread. A test waits for this before letting a time limit pass.
    """
    monitor = health._monitors.get(lifecycle)
    runs = monitor._runs.values() if monitor else ()
    return any(run.function is check and run.outcome.done() for run in runs)
