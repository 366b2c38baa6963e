"""Named steps run concurrently, with a record of what failed or hung.

The startup and the shutdown are made of steps (open a resource, call a receiver,
close a resource). This module runs them and keeps what the lifespan messages and
the logs need: which step failed with which error, and which steps were still
running when a timeout passed. It imports nothing from Django.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifespan_container._redact import describe_error, get_logger, redact

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence

    from lifespan_container.engine.limits import Limit


@dataclass(frozen=True)
class Failure:
    """One step that failed: ``error`` is what it raised, or ``None`` with a ``reason``."""

    step: str
    """What failed, e.g. ``resource 'db_pool'`` or ``receiver 'app.signals.warm'``."""
    error: BaseException | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.error is None:
            return redact(f"{self.step} {self.reason}")
        return f"{redact(self.step)} raised {describe_error(self.error)}"


def describe(failures: Sequence[Failure]) -> str:
    """Join failures into one line for a ``*.failed`` message."""
    return "; ".join(str(failure).rstrip(".") for failure in failures)


def qualified_name(function: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, as messages and logs name receivers and checks.

    A ``functools.partial`` is named by the function it wraps.
    """
    while isinstance(function, functools.partial):
        function = function.func
    module = getattr(function, "__module__", None) or "?"
    qualname = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{qualname}"


class Tracker:
    """Remembers which steps are running, so a timeout can name what it waited for."""

    def __init__(self) -> None:
        self.running: collections.Counter[str] = collections.Counter()
        """How many steps of each name are running (receivers made by one factory
        share a name)."""
        self.interrupted: list[str] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Mark ``name`` as running for the duration of the block."""
        self.running[name] += 1
        try:
            yield
        except asyncio.CancelledError:
            self.interrupted.append(name)
            raise
        finally:
            self.running[name] -= 1
            if not self.running[name]:
                del self.running[name]


CANCEL_GRACE = 1.0
"""Seconds a cancelled step gets to finish; one that ignores cancellation is left behind."""

logger = get_logger("lifespan_container")


async def run_concurrently(
    steps: Sequence[tuple[str, Coroutine[object, object, object]]],
    *,
    fail_fast: bool,
    timeout: Limit | None = None,
) -> list[Failure]:
    """Run every coroutine as a task; return the failures, in the order of ``steps``.

    With ``fail_fast`` the first failure cancels the steps still running (they are
    not failures of their own). When ``timeout`` passes, the steps still running are
    cancelled and reported as not finished within it, together with the
    failures collected until then. If the caller is cancelled, every task is
    cancelled before the cancellation goes on. Cancelled tasks get
    :data:`CANCEL_GRACE` seconds to finish; one that ignores cancellation is
    logged and left behind, so the call stays bounded.
    """
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(coro, name=name) for name, coro in steps]
    if not tasks:
        return []
    try:
        _, running = await asyncio.wait(
            tasks,
            timeout=None if timeout is None else timeout.seconds,
            return_when=asyncio.FIRST_EXCEPTION if fail_fast else asyncio.ALL_COMPLETED,
        )
    finally:
        await cancel_and_wait([task for task in tasks if not task.done()])
    failed = {
        task
        for task in tasks
        if task.done() and not task.cancelled() and task.exception() is not None
    }
    # Steps cut short by a failure (fail fast) are not failures; by the time limit, they are.
    timed_out = running if not (fail_fast and failed) else set()
    return [
        Failure(name, task.exception())
        if task in failed
        else Failure(name, reason=f"did not finish within {timeout}")
        for (name, _), task in zip(steps, tasks, strict=True)
        if task in failed or task in timed_out
    ]


async def cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait for them, :data:`CANCEL_GRACE` seconds at most."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=CANCEL_GRACE)
    for task in stuck:
        name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
        logger.error(
            "A lifespan step ignored its cancellation for %.1f s and is left running: %s",
            CANCEL_GRACE,
            name,
        )


def timed_out(tracker: Tracker, limit: Limit) -> list[Failure]:
    """The failures for a phase whose ``limit`` passed: each step it interrupted."""
    reason = f"did not finish within {limit}"
    steps = dict.fromkeys(tracker.interrupted)  # two steps may share a name
    return [Failure(step, reason=reason) for step in steps] or [Failure("startup", reason=reason)]
