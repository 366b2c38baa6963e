"""Concurrent probes share one run of each check; a result is reused for HEALTH_CHECK_CACHE.

Issue 13.1: while a check ran, every other probe of it used to be answered
``timeout``, and nothing bounded what probes cost. These tests count the runs of
each check (no wall-clock assertion: a check is held on an event the test sets
once every probe is waiting, or the cache is 0 or an hour). The runs on a bare
lifecycle, without Django (hung checks, a probe with a shorter timeout), are tested
in ``tests/engine/test_health_runs.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import psycopg_pool
import pytest
import redis
from dependency_injector import containers, providers
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.handler import LifespanHandler
from lifespan_container.health import health_check, run_checks
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan_client, override
from tests.engine.support import Tally, waiting

pytestmark = pytest.mark.asyncio

PROBES = 200
WAIT = 30.0
"""Bound for the test harness's own waits; never an expectation about speed."""

Install = Callable[[Any], Runtime]


@pytest.fixture
def install(install_container: Install) -> Install:
    return install_container


def settings_with(settings: SettingsWrapper, **values: object) -> None:
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": None,
        "STARTUP_TIMEOUT": 10.0,
        "SHUTDOWN_TIMEOUT": 10.0,
        **values,
    }


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop (and the checks' threads) run until ``condition`` holds (bounded)."""
    for _ in range(int(WAIT / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    msg = f"never: {what}"
    raise AssertionError(msg)


async def _yield(value: object) -> AsyncIterator[object]:
    yield value


# -- 200 concurrent probes against the real PostgreSQL and Redis ---------------------------


def sync_pool(dsn: str) -> Iterator[psycopg_pool.ConnectionPool]:
    with psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=2, open=False) as pool:
        pool.wait(10)
        yield pool


class CountingRedis(redis.Redis):
    """A ``redis.Redis`` (so it gets the default PING check) that counts its PINGs."""

    pings = 0

    def ping(self, **kwargs: Any) -> Any:
        self.pings += 1
        return super().ping(**kwargs)


def sync_redis(url: str) -> Iterator[CountingRedis]:
    made = CountingRedis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    client = cast("CountingRedis", made)  # from_url makes the class it is called on
    try:
        yield client
    finally:
        client.close()


def real_services(dsn: str, url: str) -> containers.DynamicContainer:
    built = containers.DynamicContainer()
    built.pool = providers.Resource(sync_pool, dsn)
    built.redis = providers.Resource(sync_redis, url)
    return built


@pytest.mark.services
async def test_200_concurrent_probes_share_one_run_of_each_real_check(
    install: Install, settings: SettingsWrapper, postgres_dsn: str, redis_url: str
) -> None:
    """200 concurrent GET /health/ all answer 200, and each check ran exactly once.

    The declared checks (a real SELECT 1 on a psycopg ConnectionPool, a real PING on
    a redis.Redis) are held until all 200 probes wait for them, so every probe after
    the first found its run going: they shared it, none was answered ``timeout``.
    The cache is the default one; it plays no part (no probe came after a run).
    """
    settings_with(settings, HEALTH_CHECK_TIMEOUT=WAIT)  # the test releases the checks
    built = real_services(postgres_dsn, redis_url)
    tally, release = Tally(), threading.Event()

    @health_check(built.pool)
    def select_one(pool: psycopg_pool.ConnectionPool) -> None:
        tally.count("pool")
        release.wait(WAIT)
        with pool.connection() as connection:
            connection.execute("SELECT 1")

    @health_check(built.redis)
    def ping(client: redis.Redis) -> object:
        tally.count("redis")
        release.wait(WAIT)
        return client.ping()

    runtime = install(built)
    async with lifespan_client(LifespanHandler(runtime)) as http:
        started = time.perf_counter()
        probes = [asyncio.ensure_future(http.get("/health/")) for _ in range(PROBES)]
        try:
            await until(lambda: waiting(runtime.lifecycle) == 2 * PROBES, "all probes waiting")
        finally:
            release.set()
            responses = await asyncio.gather(*probes)
        elapsed = time.perf_counter() - started
    codes = Counter(response.status_code for response in responses)
    print(f"\n{PROBES} probes: {dict(codes)}, runs {dict(tally.runs)}, {elapsed:.2f} s")  # noqa: T201
    assert codes == {200: PROBES}
    assert tally.runs == {"pool": 1, "redis": 1}
    for response in responses:
        body = response.json()["resources"]
        assert body["pool"]["status"] == body["redis"]["status"] == "ok"


@pytest.mark.services
async def test_200_concurrent_probes_cost_one_default_check_per_cache_period(
    install: Install, settings: SettingsWrapper, postgres_dsn: str, redis_url: str
) -> None:
    """The default checks: 200 probes make one pool checkout and one PING in all.

    Counted at the resources themselves: the pool's own request counter and the
    client's PINGs. The cache is an hour, so a probe arriving after the run ended
    reuses its result instead of running the check again.
    """
    settings_with(settings, HEALTH_CHECK_CACHE=3600)
    runtime = install(real_services(postgres_dsn, redis_url))
    async with lifespan_client(LifespanHandler(runtime)) as http:
        container: Any = runtime.container
        pool: psycopg_pool.ConnectionPool = container.pool()
        client: CountingRedis = container.redis()
        checkouts = pool.get_stats().get("requests_num", 0)
        started = time.perf_counter()
        responses = await asyncio.gather(*(http.get("/health/") for _ in range(PROBES)))
        elapsed = time.perf_counter() - started
        checkouts = pool.get_stats().get("requests_num", 0) - checkouts
    codes = Counter(response.status_code for response in responses)
    print(  # noqa: T201
        f"\n{PROBES} probes (default checks, cache 3600 s): {dict(codes)}, "
        f"{checkouts} pool checkout(s), {client.pings} PING(s), {elapsed:.2f} s"
    )
    assert codes == {200: PROBES}
    assert checkouts == 1
    assert client.pings == 1


# -- the cache ---------------------------------------------------------------------------------


async def test_the_cache_setting_reuses_a_result_and_0_runs_the_check_for_every_probe(
    install: Install, settings: SettingsWrapper
) -> None:
    """HEALTH_CHECK_CACHE = 3600: two probes in a row run each check once (a failing
    result is reused too); 0: each probe runs it again."""
    built = containers.DynamicContainer()
    built.good = providers.Resource(_yield, "good")
    built.bad = providers.Resource(_yield, "bad")
    tally = Tally()

    @health_check(built.good)
    def good(value: str) -> None:
        tally.count("good")

    @health_check(built.bad)
    async def bad(value: str) -> bool:
        tally.count("bad")
        return False

    settings_with(settings, HEALTH_CHECK_CACHE=3600)
    async with lifespan_client(LifespanHandler(install(built))) as http:
        first = await http.get("/health/")
        second = await http.get("/health/")
        assert first.status_code == second.status_code == 503
        assert tally.runs == {"good": 1, "bad": 1}
        assert first.json() == second.json()  # the same run: the same latencies

        settings_with(settings, HEALTH_CHECK_CACHE=0)
        await http.get("/health/")
        await http.get("/health/")
        assert tally.runs == {"good": 3, "bad": 3}


class Box:
    """A resource value: a new object every time the resource opens."""


async def boxes() -> AsyncIterator[Box]:
    yield Box()


async def test_a_cached_result_is_not_reused_for_a_new_value(install: Install) -> None:
    """Cached per resource value: an override and a new lifespan are checked afresh."""
    built = containers.DynamicContainer()
    built.box = providers.Resource(boxes)
    checked: list[Box] = []

    @health_check(built.box)
    async def box_check(box: Box) -> None:
        checked.append(box)

    lifecycle = install(built).lifecycle
    assert lifecycle is not None
    assert await lifecycle.start() == []
    try:
        await run_checks(lifecycle, 1, cache=3600)
        await run_checks(lifecycle, 1, cache=3600)
        [opened] = checked
        fake = Box()
        with override(built.box, fake):
            await run_checks(lifecycle, 1, cache=3600)
            await run_checks(lifecycle, 1, cache=3600)
        assert checked == [opened, fake]
        await run_checks(lifecycle, 1, cache=3600)  # the open value again: still cached
        assert checked == [opened, fake]
    finally:
        assert await lifecycle.stop(5) == []
    assert await lifecycle.start() == []  # a new lifespan: a new value
    try:
        await run_checks(lifecycle, 1, cache=3600)
    finally:
        assert await lifecycle.stop(5) == []
    assert len(checked) == 3
    assert checked[2] is not opened
