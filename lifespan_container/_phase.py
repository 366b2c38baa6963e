"""Named steps run concurrently, with a record of what failed or hung.

The startup and the shutdown are made of steps (open a resource, call a receiver,
close a resource). This module runs them and keeps what the lifespan messages and
the logs need: which step failed with which error, and which steps were still
running when a timeout passed. It imports nothing from Django.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator, Sequence


@dataclass(frozen=True)
class Failure:
    """One step that failed: ``error`` is what it raised, or ``None`` with a ``reason``."""

    step: str
    """What failed, e.g. ``resource 'db_pool'`` or ``receiver 'app.signals.warm'``."""
    error: BaseException | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.error is None:
            return f"{self.step} {self.reason}"
        text = str(self.error)
        kind = type(self.error).__name__
        return f"{self.step} raised {kind}: {text}" if text else f"{self.step} raised {kind}"


def describe(failures: Sequence[Failure]) -> str:
    """Join failures into one line for a ``*.failed`` message."""
    return "; ".join(str(failure) for failure in failures)


class Tracker:
    """Remembers which steps are running, so a timeout can name what it waited for."""

    def __init__(self) -> None:
        self.running: dict[str, None] = {}
        self.interrupted: list[str] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Mark ``name`` as running for the duration of the block."""
        self.running[name] = None
        try:
            yield
        except asyncio.CancelledError:
            self.interrupted.append(name)
            raise
        finally:
            del self.running[name]


async def run_concurrently(
    steps: Sequence[tuple[str, Coroutine[object, object, object]]],
    *,
    fail_fast: bool,
) -> list[Failure]:
    """Run every coroutine as a task; return the failures, in the order of ``steps``.

    With ``fail_fast`` the first failure cancels the steps still running (they are
    not failures of their own). If the caller is cancelled, every task is cancelled
    and awaited before the cancellation goes on, so no step is left running.
    """
    tasks = [asyncio.ensure_future(coro) for _, coro in steps]
    if not tasks:
        return []
    try:
        await asyncio.wait(
            tasks, return_when=asyncio.FIRST_EXCEPTION if fail_fast else asyncio.ALL_COMPLETED
        )
    finally:
        await _cancel_and_wait(tasks)
    return [
        Failure(name, task.exception())
        for (name, _), task in zip(steps, tasks, strict=True)
        if not task.cancelled() and task.exception() is not None
    ]


async def _cancel_and_wait(tasks: Sequence[asyncio.Future[object]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
