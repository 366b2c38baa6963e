"""What happened to each resource: one event, one log record, one call of the listener."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from lifespan_container._redact import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from lifespan_container.engine.limits import Limit

__all__ = [
    "Action",
    "Outcome",
    "Reporter",
    "ResourceEvent",
    "fields",
    "logger",
    "report_request",
]

logger = get_logger("lifespan_container.resources")

Action = Literal["start", "stop"]
Outcome = Literal["ok", "failed", "cancelled"]


@dataclass(frozen=True)
class ResourceEvent:
    """One resource opened, closed, or failed to: what a lifecycle's listener receives."""

    name: str
    """The resource's attribute path on the container, e.g. ``db`` or ``infra.cache``."""
    action: Action
    """``start`` when it was opening, ``stop`` when it was closing."""
    outcome: Outcome
    """``failed``: it raised ``error``. ``cancelled``: it was cut short (a time limit
    passed, another resource failed, or the server cancelled the lifespan)."""
    duration: float
    """Seconds from the start of the action to its end."""
    error: BaseException | None = None


class Reporter:
    """Logs each event on ``lifespan_container.resources`` and awaits the listener.

    What the listener raises is logged and changes nothing.
    """

    def __init__(self, listener: Callable[[ResourceEvent], Awaitable[None]] | None) -> None:
        self.listener = listener

    async def report(
        self,
        name: str,
        action: Action,
        outcome: Outcome,
        started: float,
        error: BaseException | None = None,
    ) -> None:
        """Report what happened to resource ``name`` since ``started`` (perf_counter)."""
        event = ResourceEvent(name, action, outcome, time.perf_counter() - started, error)
        _log(event)
        if self.listener is None:
            return
        try:
            await self.listener(event)
        except Exception:
            logger.exception("A listener of resource events failed on %r.", event)


_MESSAGES: Final = {
    ("start", "ok"): (logging.INFO, "Opened resource %r in %.1f ms."),
    ("stop", "ok"): (logging.INFO, "Closed resource %r in %.1f ms."),
    ("start", "failed"): (logging.ERROR, "Resource %r failed to open after %.1f ms."),
    ("stop", "failed"): (logging.ERROR, "Resource %r failed to close after %.1f ms."),
    ("start", "cancelled"): (logging.WARNING, "Opening resource %r was cancelled after %.1f ms."),
    ("stop", "cancelled"): (logging.WARNING, "Closing resource %r was cancelled after %.1f ms."),
}


def _log(event: ResourceEvent) -> None:
    """One record per event; a failure carries the traceback of its error."""
    level, message = _MESSAGES[event.action, event.outcome]
    logger.log(
        level,
        message,
        event.name,
        event.duration * 1000,
        exc_info=event.error,
        extra=fields(event.name, event.action, event.outcome, event.duration),
    )


def fields(name: str, action: str, outcome: str, duration: float) -> dict[str, object]:
    """The attributes every record of the resources logger carries."""
    return {"resource": name, "action": action, "outcome": outcome, "duration": duration}


_REQUEST_MESSAGES: Final = {
    ("start", "ok"): (logging.DEBUG, "Opened request-scoped resource %r for %s in %.2f ms."),
    ("stop", "ok"): (logging.DEBUG, "Closed request-scoped resource %r for %s in %.2f ms."),
    ("start", "failed"): (
        logging.ERROR,
        "Request-scoped resource %r failed to open for %s after %.2f ms.",
    ),
    ("stop", "failed"): (
        logging.ERROR,
        "Request-scoped resource %r failed to close for %s after %.2f ms.",
    ),
    ("start", "cancelled"): (
        logging.WARNING,
        "Opening request-scoped resource %r for %s was cancelled after %.2f ms.",
    ),
    ("stop", "cancelled"): (
        logging.ERROR,
        (
            "Closing request-scoped resource %r for %s did not finish in %.2f ms, the "
            "limit %s: given up."
        ),
    ),
}


def report_request(  # noqa: PLR0913 (one record, all its parts)
    name: str,
    action: str,
    outcome: str,
    started: float,
    label: str,
    *,
    error: BaseException | None = None,
    timeout: Limit | None = None,
) -> None:
    """One record for a request-scoped value: its name, the request, how long it took."""
    level, message = _REQUEST_MESSAGES[action, outcome]
    if not logger.isEnabledFor(level):
        return
    duration = time.perf_counter() - started
    args: tuple[object, ...] = (name, label or "a request", duration * 1000)
    if timeout is not None:
        args = (*args, timeout)
    extra = fields(name, action, outcome, duration)
    extra["request"] = label
    extra["scope"] = "request"
    logger.log(level, message, *args, exc_info=error, extra=extra)
