"""Named steps run concurrently, with a record of what failed or hung.

The startup and the shutdown are made of steps (open a resource, call a receiver,
close a resource). This module runs them and keeps what the lifespan messages and
the logs need: which step failed with which error, and which steps were still
running when a timeout passed. It imports nothing from Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifespan_container._redact import describe_error, get_logger, redact

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence


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
    return "; ".join(str(failure) for failure in failures)


def positive_number(value: object) -> bool:
    """Whether ``value`` is a finite number of seconds above zero (``True`` is not)."""
    seconds = _finite_seconds(value)
    return seconds is not None and seconds > 0


def non_negative_number(value: object) -> bool:
    """Whether ``value`` is a finite number of seconds, zero allowed (``True`` is not)."""
    return _finite_seconds(value) is not None


def _finite_seconds(value: object) -> float | None:
    """``value`` as finite, non-negative seconds, or ``None`` for anything else.

    Only ``int`` and ``float`` count (not ``bool``, strings or ``Decimal``); an int too
    large for a float (``10**400``) is refused rather than raising ``OverflowError``.
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def qualified_name(function: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, as messages and logs name receivers and checks."""
    module = getattr(function, "__module__", None) or "?"
    qualname = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{qualname}"


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


CANCEL_GRACE = 1.0
"""Seconds a cancelled step gets to finish; one that ignores cancellation is left behind."""

logger = get_logger("lifespan_container")


async def run_concurrently(
    steps: Sequence[tuple[str, Coroutine[object, object, object]]],
    *,
    fail_fast: bool,
    timeout: float | None = None,
    limit: str = "",
) -> list[Failure]:
    """Run every coroutine as a task; return the failures, in the order of ``steps``.

    With ``fail_fast`` the first failure cancels the steps still running (they are
    not failures of their own). When ``timeout`` passes, the steps still running are
    cancelled and reported as not finished "within ``limit``", together with the
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
            timeout=timeout,
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
        else Failure(name, reason=f"did not finish within {limit}")
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
