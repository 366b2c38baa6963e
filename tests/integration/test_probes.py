"""The probe views and the health checks, in-process, with the lifespan held in each phase."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from dependency_injector import containers, providers
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container._runtime import Runtime
from lifespan_container.handler import LifespanHandler
from lifespan_container.health import CheckResult, health_check, run_checks
from lifespan_container.testing import lifespan_client, override
from tests.lifespan_driver import SHUTDOWN_COMPLETE, STARTUP_COMPLETE, Lifespan
from tests.resources import Journal, tracked

pytestmark = pytest.mark.asyncio

Install = Callable[[Any], Runtime]


def settings_with(settings: SettingsWrapper, **values: object) -> None:
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": None,
        "STARTUP_TIMEOUT": 10.0,
        "SHUTDOWN_TIMEOUT": 10.0,
        **values,
    }


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (bounded)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


async def status(http: httpx.AsyncClient, path: str) -> tuple[int, Any]:
    response = await http.get(path)
    return response.status_code, response.json()


async def test_readiness_follows_the_lifespan_through_held_phases(install: Install) -> None:
    """503 before and during startup, 200 while serving, 503 from the start of shutdown."""
    journal = Journal()
    opening, closing = asyncio.Event(), asyncio.Event()
    built = containers.DynamicContainer()
    built.held = providers.Resource(tracked, journal, "held", hold_open=opening, hold_close=closing)
    runtime = install(built)
    handler = LifespanHandler(runtime)
    lifespan = Lifespan(handler)
    async with client(handler) as http:
        assert await status(http, "/health/ready") == (503, {"status": "idle"})

        startup = asyncio.ensure_future(lifespan.startup())
        await until(lambda: runtime.phase == "starting")
        assert await status(http, "/health/ready") == (503, {"status": "starting"})
        assert await status(http, "/health/live") == (200, {"status": "alive", "phase": "starting"})
        code, body = await status(http, "/health/")
        assert code == 503
        assert body["resources"] == {"held": {"status": "not open", "latency_ms": None}}

        opening.set()
        assert await startup == STARTUP_COMPLETE
        assert await status(http, "/health/ready") == (200, {"status": "ready"})

        shutdown = asyncio.ensure_future(lifespan.shutdown())
        await until(lambda: "close held" in journal.entries)
        assert await status(http, "/health/ready") == (503, {"status": "stopping"})
        assert (await http.get("/health/")).status_code == 503
        closing.set()
        assert await shutdown == SHUTDOWN_COMPLETE
        await lifespan.finish()
        assert await status(http, "/health/ready") == (503, {"status": "stopped"})


async def test_probes_allow_only_get_and_head_and_are_never_cached(install: Install) -> None:
    install(containers.DynamicContainer())
    async with client(LifespanHandler()) as http:
        assert (await http.post("/health/ready")).status_code == 405
        head = await http.head("/health/live")
        assert head.status_code == 200
        assert "no-store" in head.headers["Cache-Control"]


async def healthy_value(value: str) -> None:
    assert value == "fine"


class Switch:
    def __init__(self) -> None:
        self.failing = False


def flaky_check(switch: Switch) -> None:
    """A sync check: runs in a worker thread."""
    if switch.failing:
        raise ConnectionError("redis down")


def make_health_container() -> tuple[containers.DynamicContainer, Switch]:
    switch = Switch()
    built = containers.DynamicContainer()
    built.fine = providers.Resource(_yield, "fine")
    built.flaky = providers.Resource(_yield, switch)
    built.unchecked = providers.Resource(_yield, 42)
    health_check(built.fine)(healthy_value)
    health_check(built.flaky)(flaky_check)
    return built, switch


async def _yield(value: object) -> AsyncIterator[object]:
    yield value


async def test_health_names_the_failing_resource_and_hides_details_unless_debug(
    install: Install, settings: SettingsWrapper
) -> None:
    settings_with(settings, HEALTH_CHECK_CACHE=0)  # every probe runs the checks afresh
    built, switch = make_health_container()
    handler = LifespanHandler(install(built))
    lifespan = Lifespan(handler)
    assert await lifespan.startup() == STARTUP_COMPLETE
    async with client(handler) as http:
        code, body = await status(http, "/health/")
        assert code == 200
        assert body["status"] == "ok"
        assert body["phase"] == "serving"
        assert {name: r["status"] for name, r in body["resources"].items()} == {
            "fine": "ok",
            "flaky": "ok",
            "unchecked": "ok",
        }
        assert body["resources"]["fine"]["latency_ms"] >= 0
        assert body["resources"]["unchecked"] == {"status": "ok", "latency_ms": None}

        switch.failing = True
        code, body = await status(http, "/health/")
        assert code == 503
        assert body["status"] == "failing"
        assert body["resources"]["flaky"]["status"] == "failing"
        assert body["resources"]["fine"]["status"] == "ok"
        assert set(body["resources"]["flaky"]) == {"status", "latency_ms"}  # no details

        settings.DEBUG = True
        _, body = await status(http, "/health/")
        assert body["resources"]["flaky"]["error"] == "ConnectionError: redis down"
        assert body["resources"]["flaky"]["check"] == "tests.integration.test_probes.flaky_check"
        assert body["resources"]["unchecked"]["check"] is None
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE


async def test_a_hanging_check_is_cut_off_by_its_timeout_and_the_others_still_report(
    settings: SettingsWrapper,
) -> None:
    """Async checks waiting on events never set, and a sync one blocked in its thread."""
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    never = asyncio.Event()
    blocked = threading.Event()
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")
    built.hangs_long = providers.Resource(_yield, "hangs long")
    built.blocks = providers.Resource(_yield, "blocks")
    built.fine = providers.Resource(_yield, "fine")

    @health_check(built.hangs)
    async def wait_forever(value: str) -> None:
        await never.wait()

    @health_check(built.hangs_long, timeout=0.05)
    async def wait_forever_too(value: str) -> None:
        await never.wait()

    @health_check(built.blocks)
    def block(value: str) -> None:
        blocked.wait(30)

    @health_check(built.fine)
    def returns_false(value: str) -> bool:
        return False

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        results = {r.name: r for r in await run_checks(lifecycle, timeout=0.05)}
        # The blocked check is left behind in a daemon thread of its own, never in
        # the loop's executor; while it runs, it is not started again.
        [thread] = [t for t in threading.enumerate() if t.name == "lifespan-health-check"]
        assert thread.daemon
        again = {r.name: r for r in await run_checks(lifecycle, timeout=0.05)}
        assert again["blocks"].status == "timeout"
        assert again["blocks"].error is not None
        assert again["blocks"].error.startswith(
            "did not finish within 0.05 s; still running after "
        )
        assert again["blocks"].error.endswith(" s, so not started again until it ends")
        assert [t for t in threading.enumerate() if t.name == "lifespan-health-check"] == [thread]
    finally:
        blocked.set()  # let the thread end
        assert await lifecycle.stop(5) == []
    assert results["hangs"].status == "timeout"
    assert results["hangs"].error == "did not finish within 0.05 s"
    assert results["hangs"].latency is not None
    assert results["hangs"].latency >= 0.05
    assert results["hangs_long"].status == "timeout"  # its own timeout=0.05
    assert results["blocks"].status == "timeout"
    assert results["fine"] == CheckResult(
        "fine",
        "failing",
        "tests.integration.test_probes.test_a_hanging_check_is_cut_off_by_its_timeout_and_the_others_still_report.<locals>.returns_false",
        results["fine"].latency,
        "the check returned False",
    )


async def test_an_overridden_resource_is_checked_as_its_override(install: Install) -> None:
    """A test's fake is what the views get, so it is what the health view checks."""
    built, _ = make_health_container()
    runtime = install(built)
    assert runtime.lifecycle is not None
    fake = Switch()
    fake.failing = True
    with override(built.flaky, fake):
        results = {r.name: r.status for r in await run_checks(runtime.lifecycle, timeout=1)}
    # Nothing was opened, and the override was checked: the others are not open.
    assert results == {"fine": "not open", "flaky": "failing", "unchecked": "not open"}


async def test_health_check_refuses_what_is_not_a_resource_or_a_bad_timeout() -> None:
    class Container(containers.DeclarativeContainer):
        factory = providers.Factory(object)
        resource = providers.Resource(_yield, 1)

    with pytest.raises(TypeError, match=r"takes a Resource provider of a container"):
        health_check(Container.factory)
    for bad in (0, -1, True, "5", float("inf")):
        with pytest.raises(ValueError, match=r"must be a positive number of seconds"):
            health_check(Container.resource, timeout=bad)  # type: ignore[arg-type]


class Infra(containers.DeclarativeContainer):
    db = providers.Resource(_yield, "db")


class Nested(containers.DeclarativeContainer):
    infra = providers.Container(Infra)
    top = providers.Resource(_yield, "top")


@health_check(Infra.db)
async def db_check(value: str) -> bool:
    return value == "db"


@health_check(Nested.top)
def top_check(value: str) -> bool:
    return value == "top"


async def test_checks_declared_on_container_classes_apply_to_their_instances() -> None:
    """Declared on ``Container.x`` (or a nested container's class), found on the instance."""
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    lifecycle = ResourceLifecycle(Nested())
    assert await lifecycle.start() == []
    try:
        results = {r.name: (r.status, r.check) for r in await run_checks(lifecycle, 1)}
    finally:
        await lifecycle.stop(5)
    assert results == {
        "infra.db": ("ok", "tests.integration.test_probes.db_check"),
        "top": ("ok", "tests.integration.test_probes.top_check"),
    }


@pytest.fixture
def install(install_container: Install) -> Install:
    return install_container


class Fakes(containers.DeclarativeContainer):
    flaky = providers.Resource(_yield, "a fake that nothing would close")


async def test_an_overriding_resource_is_never_opened_by_a_check(install: Install) -> None:
    built, _ = make_health_container()
    runtime = install(built)
    assert runtime.lifecycle is not None
    built.override(Fakes)
    try:
        results = {r.name: r.status for r in await run_checks(runtime.lifecycle, timeout=1)}
    finally:
        built.reset_override()
    assert results["flaky"] == "not open"
    assert not Fakes.flaky.initialized


async def test_a_check_from_another_event_loop_fails_with_the_loop_error() -> None:
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    built = containers.DynamicContainer()
    built.client = providers.Resource(_yield, "loop-bound")
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        [result] = await asyncio.to_thread(asyncio.run, run_checks(lifecycle, timeout=1))
    finally:
        assert await lifecycle.stop(5) == []
    assert result.status == "failing"
    assert result.error is not None
    assert "asked for from another event loop" in result.error


async def test_a_check_raising_anything_fails_only_its_own_resource(
    install: Install, settings: SettingsWrapper
) -> None:
    """sys.exit(3) and KeyboardInterrupt in sync checks (in their threads), CancelledError
    and SystemExit in async ones: each is that resource's ``failing`` result, with
    what it raised; the other resources report ``ok`` and the probe answers."""
    settings_with(settings, HEALTH_CHECK_CACHE=0)
    settings.DEBUG = True
    built = containers.DynamicContainer()
    for name in ("exits", "interrupted", "cancelled", "exits_async", "generator", "fine"):
        setattr(built, name, providers.Resource(_yield, name))

    @health_check(built.exits)
    def exits(value: str) -> None:
        sys.exit(3)

    @health_check(built.interrupted)
    def interrupted(value: str) -> None:
        raise KeyboardInterrupt

    @health_check(built.cancelled)
    async def cancelled(value: str) -> None:
        raise asyncio.CancelledError  # not a cancellation of anything: a bug in a check

    @health_check(built.exits_async)
    async def exits_async(value: str) -> None:
        raise SystemExit

    @health_check(built.generator)
    async def generator(value: str) -> None:
        raise GeneratorExit

    @health_check(built.fine)
    def fine(value: str) -> bool:
        return value == "fine"

    handler = LifespanHandler(install(built))
    async with lifespan_client(handler) as http:
        code, body = await status(http, "/health/")
        again, _ = await status(http, "/health/")  # and the checks run again
    assert (code, again) == (503, 503)
    assert {name: (r["status"], r["error"]) for name, r in body["resources"].items()} == {
        "exits": ("failing", "SystemExit: 3"),
        "interrupted": ("failing", "KeyboardInterrupt"),
        "cancelled": ("failing", "CancelledError"),
        "exits_async": ("failing", "SystemExit"),
        "generator": ("failing", "GeneratorExit"),
        "fine": ("ok", None),
    }


async def test_the_cancellation_of_a_probe_itself_propagates() -> None:
    """A probe whose client left (or whose server stops) is cancelled: ``run_checks``
    raises CancelledError rather than reporting it as a failing check. The run it
    waited for goes on, for the probes still waiting."""
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    release, started = asyncio.Event(), asyncio.Event()
    runs: list[str] = []
    built = containers.DynamicContainer()
    built.slow = providers.Resource(_yield, "slow")

    @health_check(built.slow)
    async def slow(value: str) -> None:
        runs.append(value)
        started.set()
        await release.wait()  # set by the test once the first probe is cancelled

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        leaving = asyncio.ensure_future(run_checks(lifecycle, timeout=30))
        staying = asyncio.ensure_future(run_checks(lifecycle, timeout=30))
        await asyncio.wait_for(started.wait(), 10)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        release.set()
        [result] = await staying
    finally:
        release.set()
        assert await lifecycle.stop(5) == []
    assert result.status == "ok"
    assert runs == ["slow"]
