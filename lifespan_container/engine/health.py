"""Health checks of a lifecycle's resources: run them all, each bounded, never raising.

Every open resource gets a health check: the one declared for its provider with
:func:`~lifespan_container.health.health_check`, or else a default for its type,
or none (see :mod:`lifespan_container.engine.health_checks`). :func:`run_checks`
runs them concurrently, shares and caches the runs (see
:mod:`lifespan_container.engine.health_runs`) and reports each resource's status
and latency.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from lifespan_container._redact import redact
from lifespan_container.engine.graph import is_async_result
from lifespan_container.engine.health_checks import DECLARED
from lifespan_container.engine.health_runs import Monitor, Status, being_cancelled, describe
from lifespan_container.exceptions import ResourcesNotStartedError, WrongEventLoopError

if TYPE_CHECKING:
    from lifespan_container.engine.lifecycle import ResourceLifecycle

__all__ = ["CheckResult", "run_checks"]


@dataclass(frozen=True)
class CheckResult:
    """How one resource did in its health check."""

    name: str
    """The resource's attribute path on the container."""
    status: Status
    """``ok``; ``failing`` (the check raised or returned ``False``); ``timeout`` (it
    did not finish in time); ``not open`` (the resources are not open)."""
    check: str | None
    """What was checked (``None``: the resource is open and has no check)."""
    latency: float | None = None
    """Seconds the check took (``None`` when no check ran); for a run that is still
    going past its timeout, how long it has been running. Probes that shared a run,
    or reused its result, report that run's latency."""
    error: str | None = None
    """What went wrong, e.g. ``OperationalError: connection refused`` (credentials
    masked)."""

    @property
    def ok(self) -> bool:
        """Whether the resource is healthy."""
        return self.status == "ok"


async def run_checks(
    lifecycle: ResourceLifecycle, timeout: float, *, cache: float = 0.0
) -> list[CheckResult]:
    """Check every resource of ``lifecycle`` concurrently; results in start order.

    Each check is bounded by its own timeout (``timeout`` seconds unless declared
    otherwise) and never raises: what it raised, ``BaseException`` included, is in
    its result. Only the cancellation of the caller itself propagates.

    A run of a check is shared: a probe that finds one running waits for its result
    (within the run's timeout, or its own if shorter) instead of starting another;
    a result is reused for ``cache`` seconds after its run ended in time (``0``: not
    reused). A sync check left running past its timeout is reported as ``timeout``
    and not started again until it ends. Runs are shared and cached per lifecycle,
    per resource value: a new value (a new lifespan, an override) is checked
    afresh. A resource a test overrides is checked as the value the override gives.
    """
    probe = _Probe(lifecycle, _monitor_for(lifecycle), timeout, cache)
    return list(await asyncio.gather(*(_check(probe, name) for name in lifecycle.names)))


class _Probe(NamedTuple):
    """One call of :func:`run_checks`: what every resource's check shares."""

    lifecycle: ResourceLifecycle
    monitor: Monitor
    default_timeout: float
    cache: float


async def _check(probe: _Probe, name: str) -> CheckResult:
    """Check resource ``name``; contains whatever goes wrong, except being cancelled."""
    try:
        return await _check_resource(probe, name)
    except asyncio.CancelledError as exc:
        if being_cancelled():
            raise  # the probe itself is cancelled: the client left, the server stops
        return CheckResult(name, "failing", None, error=describe(exc))
    except BaseException as exc:  # noqa: BLE001 (an override or a check raising anything)
        return CheckResult(name, "failing", None, error=describe(exc))


async def _check_resource(probe: _Probe, name: str) -> CheckResult:
    lifecycle, monitor, default_timeout, cache = probe
    try:
        value = lifecycle.current(name)
    except ResourcesNotStartedError:
        return CheckResult(name, "not open", None, error="the resources are not open")
    except WrongEventLoopError as exc:
        return CheckResult(name, "failing", None, error=redact(str(exc)))
    if lifecycle.overridden(name) and is_async_result(value):  # an async override's result
        limit = asyncio.timeout(default_timeout)
        try:
            async with limit:  # awaited here, not in a task: what it raises stays in _check
                value = await value
        except TimeoutError:
            if not limit.expired():
                raise
            return CheckResult(name, "timeout", None, error="the override did not give a value")
    check = DECLARED.check_for(lifecycle.container, name, value)
    if check is None:
        return CheckResult(name, "ok", None)
    seconds = check.timeout or default_timeout
    run = monitor.run(check, value, seconds, cache)
    outcome = await run.result(seconds)
    return CheckResult(name, outcome.status, check.label, outcome.latency, outcome.error)


_monitors: weakref.WeakKeyDictionary[ResourceLifecycle, Monitor] = weakref.WeakKeyDictionary()
"""Each lifecycle's runs, for as long as the lifecycle lives."""


def _monitor_for(lifecycle: ResourceLifecycle) -> Monitor:
    monitor = _monitors.get(lifecycle)
    if monitor is None:
        monitor = _monitors[lifecycle] = Monitor()
    return monitor
