"""Resources for the tests that record what they do, in order, and containers of them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from dependency_injector import containers, providers


def container(**members: providers.Provider[Any]) -> containers.DynamicContainer:
    """A container made of ``members``, for a test that needs no container class."""
    built = containers.DynamicContainer()
    for name, provider in members.items():
        setattr(built, name, provider)
    return built


def assert_all_closed(built: containers.Container) -> None:
    for provider in built.traverse(types=[providers.Resource]):
        assert not provider.initialized, provider


class Journal:
    """The ordered record of every open and close, from any thread."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self._lock = threading.Lock()

    def add(self, entry: str) -> None:
        with self._lock:
            self.entries.append(entry)

    def opened(self) -> list[str]:
        return [e.removeprefix("open ") for e in self.entries if e.startswith("open ")]

    def closed(self) -> list[str]:
        return [e.removeprefix("close ") for e in self.entries if e.startswith("close ")]


async def tracked(
    journal: Journal,
    name: str,
    *depends_on: Any,
    fail_open: BaseException | None = None,
    fail_close: BaseException | None = None,
    hold_open: asyncio.Event | None = None,
    hold_close: asyncio.Event | None = None,
) -> AsyncIterator[str]:
    """An async resource named ``name``; its value is the name."""
    if hold_open is not None:
        await hold_open.wait()
    if fail_open is not None:
        raise fail_open
    journal.add(f"open {name}")
    try:
        yield name
    finally:
        journal.add(f"close {name}")
        if hold_close is not None:
            await hold_close.wait()
        if fail_close is not None:
            raise fail_close


def tracked_sync(
    journal: Journal,
    name: str,
    *depends_on: Any,
    fail_open: BaseException | None = None,
    fail_close: BaseException | None = None,
) -> Iterator[str]:
    """A sync resource named ``name``; records the thread it opened in."""
    if fail_open is not None:
        raise fail_open
    journal.add(f"open {name}")
    journal.add(f"thread {name} {threading.get_ident()}")
    try:
        yield name
    finally:
        journal.add(f"close {name}")
        if fail_close is not None:
            raise fail_close
