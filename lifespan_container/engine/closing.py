"""The end of a shutdown: wait for the closes until the deadline, name what did not close."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lifespan_container.engine.steps import Failure, Tracker, cancel_and_wait

if TYPE_CHECKING:
    from lifespan_container.engine.limits import Limit

__all__ = ["resource_step", "wait_for_closes"]


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
        await asyncio.wait(closing.values(), timeout=max(deadline - loop.time(), 0))
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
