"""The probe views and the health checks, in-process, with the lifespan held in each phase."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from dependency_injector import containers, providers
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.handler import LifespanHandler
from lifespan_container.health import health_check, run_checks
from lifespan_container.runtime import Runtime
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
