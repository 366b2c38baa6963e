"""Probe views for load balancers, Kubernetes and monitoring, tied to the lifespan.

Include them all under one prefix:

.. code-block:: python

    urlpatterns = [
        path("health/", include("lifespan_container.urls")),
        # /health/live, /health/ready, /health/
    ]

or route each view yourself. Every answer is JSON, never cached (``Cache-Control:
no-store``), and only ``GET`` and ``HEAD`` are allowed.

:func:`liveness`
    200 whenever the process answers: the event loop runs. It checks no resource,
    so a database outage never makes Kubernetes restart every pod.
:func:`readiness`
    200 between the end of the lifespan startup and the beginning of its
    shutdown, 503 otherwise (``starting``, ``stopping``, ``stopped``, ``idle``:
    no lifespan has run in this process).
:func:`health`
    Runs every resource's health check concurrently, each bounded by
    ``HEALTH_CHECK_TIMEOUT``; 200 when the process is serving and every check
    passed, else 503. The body names each resource with its status and latency;
    what was checked and the error (credentials masked) are shown only when
    ``DEBUG`` is on. Concurrent probes share one run of each check, and a result
    is reused for ``HEALTH_CHECK_CACHE`` seconds: any number of probes costs at
    most one check per resource per that period.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from lifespan_container._redact import redact
from lifespan_container._runtime import get_runtime
from lifespan_container._settings import lifespan_settings
from lifespan_container.engine.health import CheckResult, run_checks

__all__ = ["health", "liveness", "readiness"]


def _answer(body: dict[str, Any], *, ok: bool) -> JsonResponse:
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
@require_safe
async def liveness(request: HttpRequest) -> JsonResponse:  # noqa: ARG001
    """200 while the process answers at all; the lifespan phase is in the body."""
    return _answer({"status": "alive", "phase": get_runtime().phase}, ok=True)


@never_cache
@require_safe
async def readiness(request: HttpRequest) -> JsonResponse:  # noqa: ARG001
    """200 while serving (startup completed, shutdown not begun), else 503."""
    phase = get_runtime().phase
    ready = phase == "serving"
    return _answer({"status": "ready" if ready else phase}, ok=ready)


@never_cache
@require_safe
async def health(request: HttpRequest) -> JsonResponse:  # noqa: ARG001
    """Every resource's health check: 200 when all pass while serving, else 503."""
    runtime = get_runtime()
    lifecycle = runtime.lifecycle
    config = lifespan_settings()
    results = (
        await run_checks(lifecycle, config.health_check_timeout, cache=config.health_check_cache)
        if lifecycle
        else []
    )
    healthy = runtime.phase == "serving" and all(result.ok for result in results)
    return _answer(
        {
            "status": "ok" if healthy else "failing",
            "phase": runtime.phase,
            "resources": {result.name: _entry(result) for result in results},
        },
        ok=healthy,
    )


def _entry(result: CheckResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": result.status,
        "latency_ms": None if result.latency is None else round(result.latency * 1000, 2),
    }
    if settings.DEBUG:
        # What was checked and how it failed can name hosts, users and queries.
        entry["check"] = result.check
        entry["error"] = None if result.error is None else redact(result.error)
    return entry
