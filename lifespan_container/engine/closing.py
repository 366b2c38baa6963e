"""The end of a shutdown: wait for the closes until the deadline, name what did not close."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from lifespan_container.engine.events import logger
from lifespan_container.engine.steps import Failure, Tracker, cancel_and_wait

if TYPE_CHECKING:
    from dependency_injector import providers

    from lifespan_container.engine.limits import Limit

__all__ = ["close_when_opened", "resource_step", "wait_for_closes"]


def resource_step(name: str) -> str:
    """How failures and the tracker name the step of resource ``name``."""
    return f"resource {name!r}"


async def wait_for_closes(
    deadline: float,
    closing: dict[str, asyncio.Future[None]],
    tracker: Tracker,
    limit: Limit,
    *,
    quiet: set[str],
) -> list[Failure]:
    """Wait for the closes until ``deadline``; cancel the rest; failures in closing order.

    A resource of ``quiet`` still opening in its thread at the deadline is logged
    (by the lifecycle), not a failure.
    """
    loop = asyncio.get_running_loop()
    if closing:
        try:
            await asyncio.wait(closing.values(), timeout=max(deadline - loop.time(), 0))
        except asyncio.CancelledError:
            # The caller gave up: no close may go on unwatched and unbounded.
            await cancel_and_wait([task for task in closing.values() if not task.done()])
            raise
    hung = set(tracker.running)
    timed_out = {name: task for name, task in closing.items() if not task.done()}
    await cancel_and_wait(list(timed_out.values()))
    failures: list[Failure] = []
    for name, task in closing.items():
        step = resource_step(name)
        if name in timed_out:
            if step in hung:
                failures.append(Failure(step, reason=f"did not close within {limit}"))
            elif name not in quiet:
                reason = f"was not closed: {limit} passed before its turn"
                failures.append(Failure(step, reason=reason))
        elif not task.cancelled() and task.exception() is not None:
            failures.append(Failure(step, task.exception()))
    return failures


def close_when_opened(
    provider: providers.Resource[Any], name: str, future: asyncio.Future[Any]
) -> None:
    """Close a sync resource that opened after its lifespan's shutdown gave up on it.

    Not on the loop (its close is sync work) and not left open: the next startup
    would otherwise find it initialised, built on what the shutdown closed.
    """
    if future.cancelled() or future.exception() is not None:
        return

    def close() -> None:
        try:
            provider.shutdown()
        except Exception:  # noqa: BLE001 (logged: nobody waits for this thread)
            logger.exception("Resource %r, opened after the shutdown, failed to close.", name)
        else:
            logger.info("Resource %r, opened after the shutdown, is closed.", name)

    threading.Thread(target=close, name="lifespan-late-close", daemon=True).start()
