"""Startup time of the resource lifecycle against the dependency graph's critical path.

Three containers, each resource taking 0.1 s to open:

- 10 independent async resources  (critical path 0.1 s)
- 10 independent sync resources   (critical path 0.1 s)
- a chain of 10 dependent ones    (critical path 1.0 s)

Target: within 10 % + 20 ms of the critical path. For comparison,
dependency-injector's own ``init_resources()`` runs on the same sync container.

    python benchmarks/startup.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from dependency_injector import containers, providers

from lifespan_container.lifecycle import ResourceLifecycle

STEP = 0.1


async def async_resource(*depends_on: Any) -> AsyncIterator[str]:
    await asyncio.sleep(STEP)
    yield "async"


def sync_resource(*depends_on: Any) -> Iterator[str]:
    time.sleep(STEP)
    yield "sync"


def independent(factory: Any) -> containers.DynamicContainer:
    built = containers.DynamicContainer()
    for index in range(10):
        setattr(built, f"r{index}", providers.Resource(factory))
    return built


def chain() -> containers.DynamicContainer:
    built = containers.DynamicContainer()
    previous: providers.Provider[Any] | None = None
    for index in range(10):
        resource = providers.Resource(async_resource, *([previous] if previous else []))
        setattr(built, f"r{index}", resource)
        previous = resource
    return built


async def lifecycle_startup(built: containers.Container) -> float:
    lifecycle = ResourceLifecycle(built)
    started = time.perf_counter()
    failures = await lifecycle.start()
    elapsed = time.perf_counter() - started
    assert failures == [], failures
    assert await lifecycle.stop(30) == []
    return elapsed


def dependency_injector_startup(built: containers.Container) -> float:
    started = time.perf_counter()
    built.init_resources()
    elapsed = time.perf_counter() - started
    built.shutdown_resources()
    return elapsed


async def main() -> None:
    cases = [
        ("10 independent async", independent(async_resource), STEP),
        ("10 independent sync", independent(sync_resource), STEP),
        ("chain of 10 dependent", chain(), 10 * STEP),
    ]
    print("startup of the resource lifecycle (each resource takes 0.1 s to open)")
    for label, built, critical in cases:
        elapsed = await lifecycle_startup(built)
        budget = critical * 1.10 + 0.020
        print(
            f"  {label:<22} {elapsed:6.3f} s  critical path {critical:.1f} s  "
            f"ratio {elapsed / critical:.3f}  target <= {budget:.3f} s: "
            f"{'met' if elapsed <= budget else 'NOT met'}"
        )
    baseline = await asyncio.to_thread(dependency_injector_startup, independent(sync_resource))
    print(
        f"  dependency-injector init_resources(), 10 independent sync: {baseline:.3f} s "
        f"({baseline / STEP:.1f}x the critical path)"
    )


if __name__ == "__main__":
    asyncio.run(main())
