"""run_checks on a bare lifecycle, and the registry of declared checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from dependency_injector import providers

from lifespan_container.engine.health import CheckResult, run_checks
from lifespan_container.engine.health_checks import DECLARED, Check, health_check
from lifespan_container.engine.lifecycle import ResourceLifecycle
from tests.clock import LoopClock, until
from tests.engine.support import build, settled

pytestmark = pytest.mark.asyncio

LIMIT = 100
"""A check's time limit under test: real time never reaches it; the test moves the clock."""


async def value(name: str) -> AsyncIterator[str]:
    yield name


async def passes(value: str) -> bool:
    return value == "db"


async def hangs(value: str) -> None:
    await asyncio.Event().wait()


async def test_run_checks_on_a_bare_lifecycle(clock: LoopClock) -> None:
    """Not open before start; then each resource passes, hangs into a timeout, or has no check.

    The db check finishes, and the stuck one is running, before the test lets the
    limit pass: only the stuck one can be cut off by it.
    """
    stuck_running = asyncio.Event()

    async def hangs_noted(value: str) -> None:
        stuck_running.set()
        await asyncio.Event().wait()

    built = build(
        db=providers.Resource(value, "db"),
        stuck=providers.Resource(value, "stuck"),
        plain=providers.Resource(value, "plain"),
    )
    DECLARED.declare(built.db, Check(passes, "db: equals 'db'"))
    DECLARED.declare(built.stuck, Check(hangs_noted, "stuck: hangs"))
    lifecycle = ResourceLifecycle(built)
    not_open = "the resources are not open"
    # No check runs while nothing is open: the limit bounds nothing here.
    assert await run_checks(lifecycle, 0.2) == [
        CheckResult(name, "not open", None, error=not_open) for name in ("db", "stuck", "plain")
    ]
    assert await lifecycle.start(timeout=10) == []
    try:
        probing = asyncio.ensure_future(run_checks(lifecycle, LIMIT))
        await until(
            lambda: stuck_running.is_set() and settled(lifecycle, passes),
            "db's check passed and stuck's is running",
        )
        clock.advance(LIMIT + 50)
        await until(probing.done, "the stuck check cut off by its limit")
        db, stuck, plain = probing.result()
    finally:
        assert await lifecycle.stop(10) == []
    assert (db.name, db.status, db.check, db.error) == ("db", "ok", "db: equals 'db'", None)
    assert db.latency is not None
    assert (stuck.status, stuck.check) == ("timeout", "stuck: hangs")
    assert stuck.error == f"did not finish within {LIMIT} s"
    assert plain == CheckResult("plain", "ok", None)


async def test_remove_and_clear_drop_declarations() -> None:
    """A declared check is found for its resource until removed, or until all are cleared."""
    built = build(db=providers.Resource(value, "db"), cache=providers.Resource(value, "cache"))
    health_check(built.db, timeout=1)(passes)
    health_check(built.cache)(hangs)
    check = DECLARED.for_resource(built, "db")
    assert check == Check(passes, f"{__name__}.passes", 1)
    DECLARED.remove(built.db)
    assert DECLARED.for_resource(built, "db") is None
    assert DECLARED.for_resource(built, "cache") is not None
    DECLARED.remove(built.db)  # removing what is not declared is no error
    DECLARED.clear()
    assert DECLARED.for_resource(built, "cache") is None


async def test_health_check_takes_only_resources_and_positive_timeouts() -> None:
    """Declaring for another provider, or with a timeout that is not positive, is refused."""
    with pytest.raises(TypeError, match="takes a Resource provider"):
        health_check(providers.Object(1))
    with pytest.raises(ValueError, match="must be a positive number of seconds, not 0"):
        health_check(providers.Resource(value, "db"), timeout=0)
