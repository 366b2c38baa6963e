"""The lifespan signals, and how the handler sends them.

``asgi_startup``
    Sent by the ASGI handler on every ``lifespan.startup``, **after** every resource
    of the container opened: a receiver can use them (``get_container()``,
    ``@inject``). Startup completes when every receiver returned.

``asgi_shutdown``
    Sent on every ``lifespan.shutdown`` that follows a completed startup, **before**
    any resource closes: the resources are still open while receivers run.

Both are sent with ``sender`` set to the handler's class and these keyword
arguments:

- ``scope``: the lifespan scope from the server;
- ``state``: the lifespan state dict (``scope["state"]``), or ``None`` when the
  server provides none. What a startup receiver stores in it, the server copies
  into every request's scope (see :func:`lifespan_container.lifespan_state`).

``resource_started``, ``resource_stopped``, ``resource_failed``
    Sent after each resource of the container opened, closed, or failed to (see
    :func:`send_resource_event`), for metrics and tracing.

Async receivers of the lifespan signals are awaited concurrently, in the serving event loop. Sync
receivers run off the event loop, one after the other, in the thread Django uses
for thread-sensitive code (``sync_to_async``). A receiver that raises fails the
phase like a failing resource: at startup every opened resource is closed again
and the server is sent ``lifespan.startup.failed`` naming the receiver; at
shutdown every other receiver still runs, the resources still close, and all
failures are reported together in ``lifespan.shutdown.failed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.dispatch import Signal

from lifespan_container._redact import get_logger
from lifespan_container.engine.steps import Failure, Tracker, qualified_name, run_concurrently

if TYPE_CHECKING:
    from collections.abc import Callable

    from lifespan_container.engine.events import ResourceEvent
    from lifespan_container.engine.limits import Limit

__all__ = [
    "asgi_shutdown",
    "asgi_startup",
    "resource_failed",
    "resource_started",
    "resource_stopped",
]

logger = get_logger("lifespan_container")

asgi_startup = Signal()
"""Sent after every resource opened, before startup completes. Keyword arguments:
``scope``, ``state``."""
asgi_shutdown = Signal()
"""Sent when shutdown begins, before any resource closes. Keyword arguments:
``scope``, ``state``."""

resource_started = Signal()
"""A resource opened. Keyword arguments: ``name``, ``duration`` (seconds)."""
resource_stopped = Signal()
"""A resource closed. Keyword arguments: ``name``, ``duration`` (seconds)."""
resource_failed = Signal()
"""A resource failed to open or close. Keyword arguments: ``name``, ``duration``,
``action`` (``"start"`` or ``"stop"``), ``outcome`` (``"failed"``: it raised
``error``; ``"cancelled"``: it was cut short, ``error`` is ``None``)."""


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
