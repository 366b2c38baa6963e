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

Async receivers are awaited concurrently, in the serving event loop. Sync
receivers run off the event loop, one after the other, in the thread Django uses
for thread-sensitive code (``sync_to_async``). A receiver that raises fails the
phase like a failing resource: at startup every opened resource is closed again
and the server is sent ``lifespan.startup.failed`` naming the receiver; at
shutdown every other receiver still runs, the resources still close, and all
failures are reported together in ``lifespan.shutdown.failed``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.dispatch import Signal

from lifespan_container._phase import Failure, Tracker, run_concurrently

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["asgi_shutdown", "asgi_startup"]

logger = logging.getLogger("lifespan_container")

asgi_startup = Signal()
asgi_shutdown = Signal()


def receiver_name(receiver: Callable[..., Any]) -> str:
    """``module.qualname`` of a receiver, as messages and logs name it."""
    module = getattr(receiver, "__module__", None) or "?"
    qualname = getattr(receiver, "__qualname__", None) or repr(receiver)
    return f"{module}.{qualname}"


async def dispatch(  # noqa: PLR0913 (all keyword-only)
    signal: Signal,
    *,
    sender: object,
    tracker: Tracker,
    fail_fast: bool,
    timeout: float | None = None,
    limit: str = "",
    **named: Any,
) -> list[Failure]:
    """Send ``signal`` to every live receiver; return the receivers that failed.

    Each receiver is a step of its own, so a timeout can name the receivers it was
    still waiting for, and each failure names its receiver. ``timeout`` bounds them
    all (``limit`` names it in the failures) without losing the failures collected.
    """
    if not signal.receivers:
        return []
    # Django 5.0+ splits the live receivers into sync and async ones.
    sync_receivers, async_receivers = signal._live_receivers(sender)  # noqa: SLF001
    steps = [
        (
            f"receiver {receiver_name(receiver)!r}",
            _call(
                receiver if iscoroutinefunction(receiver) else sync_to_async(receiver),
                f"receiver {receiver_name(receiver)!r}",
                tracker,
                signal=signal,
                sender=sender,
                **named,
            ),
        )
        for receiver in [*sync_receivers, *async_receivers]
    ]
    return await run_concurrently(steps, fail_fast=fail_fast, timeout=timeout, limit=limit)


async def _call(receiver: Callable[..., Any], step: str, tracker: Tracker, **kwargs: Any) -> None:
    with tracker.step(step):
        try:
            await receiver(**kwargs)
        except Exception:
            logger.exception("The %s failed.", step)
            raise
