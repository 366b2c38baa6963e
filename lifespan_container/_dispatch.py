"""Sending the library's signals: the lifespan signals as steps, the resource events.

Each receiver of a lifespan signal is a step of its own (so a timeout names the
receivers it waited for, and each failure names its receiver); a receiver of a
resource signal that raises is logged, never propagated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, sync_to_async

from lifespan_container._redact import get_logger
from lifespan_container.engine.steps import Failure, Tracker, qualified_name, run_concurrently
from lifespan_container.signals import resource_failed, resource_started, resource_stopped

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.dispatch import Signal

    from lifespan_container.engine.events import ResourceEvent
    from lifespan_container.engine.limits import Limit

__all__ = ["dispatch", "send_resource_event"]

logger = get_logger("lifespan_container")


async def send_resource_event(sender: type, event: ResourceEvent) -> None:
    """Send the signal for ``event``; a receiver that raises is logged, not propagated.

    ``sender`` is the container's declarative class. Async receivers are awaited;
    sync receivers run in Django's thread for thread-sensitive code. The lifecycle
    awaits this after each resource's open or close, inside the phase's time limit.
    """
    if event.outcome == "ok":
        signal = resource_started if event.action == "start" else resource_stopped
        named: dict[str, Any] = {}
    else:
        signal = resource_failed
        named = {"action": event.action, "outcome": event.outcome, "error": event.error}
    if not signal.receivers:
        return
    responses = await signal.asend_robust(sender, name=event.name, duration=event.duration, **named)
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "Receiver %s of a resource signal failed on %r.",
                qualified_name(receiver),
                event.name,
                exc_info=response,
            )


async def dispatch(
    signal: Signal,
    *,
    sender: object,
    tracker: Tracker,
    fail_fast: bool,
    timeout: Limit | None = None,
    **named: Any,
) -> list[Failure]:
    """Send ``signal`` to every live receiver; return the receivers that failed.

    Each receiver is a step of its own, so a timeout can name the receivers it was
    still waiting for, and each failure names its receiver. ``timeout`` bounds them
    all (failures name it) without losing the failures collected.
    """
    if not signal.receivers:
        return []
    # Django 5.0+ splits the live receivers into sync and async ones.
    sync_receivers, async_receivers = signal._live_receivers(sender)  # noqa: SLF001
    steps = [
        (
            f"receiver {qualified_name(receiver)!r}",
            _call(
                receiver if iscoroutinefunction(receiver) else sync_to_async(receiver),
                f"receiver {qualified_name(receiver)!r}",
                tracker,
                signal=signal,
                sender=sender,
                **named,
            ),
        )
        for receiver in [*sync_receivers, *async_receivers]
    ]
    return await run_concurrently(steps, fail_fast=fail_fast, timeout=timeout)


async def _call(receiver: Callable[..., Any], step: str, tracker: Tracker, **kwargs: Any) -> None:
    with tracker.step(step):
        try:
            await receiver(**kwargs)
        except Exception:
            logger.exception("The %s failed.", step)
            raise
