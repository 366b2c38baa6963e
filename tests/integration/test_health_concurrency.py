"""Concurrent probes share one run of each check; a result is reused for HEALTH_CHECK_CACHE.

Issue 13.1: while a check ran, every other probe of it used to be answered
``timeout``, and nothing bounded what probes cost. These tests count the runs of
each check (no wall-clock assertion: a check is held on an event the test sets
once every probe is waiting, or the cache is 0 or an hour).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import httpx
import psycopg_pool
import pytest
import redis
from dependency_injector import containers, providers
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container._runtime import Runtime
from lifespan_container.engine import health
from lifespan_container.handler import LifespanHandler
from lifespan_container.health import CheckResult, health_check, run_checks
from lifespan_container.lifecycle import ResourceLifecycle
from lifespan_container.testing import lifespan_client, override

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


def waiting(lifecycle: ResourceLifecycle | None) -> int:
    """How many probes wait for a run of a check of ``lifecycle`` now."""
    monitor = health._monitors.get(lifecycle) if lifecycle else None
    runs = monitor._runs.values() if monitor else ()
    return sum(run.waiters for run in runs)


class Tally:
    """Counts the runs of each check; sync checks run in threads of their own."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str) -> None:
        with self._lock:
            self.runs[name] += 1


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


# -- hung checks -----------------------------------------------------------------------------


async def probe(lifecycle: ResourceLifecycle, count: int, **options: Any) -> list[CheckResult]:
    """``count`` concurrent probes of a lifecycle with one resource: each one's result."""
    options = {"timeout": 0.05, **options}
    answers = await asyncio.gather(*(run_checks(lifecycle, **options) for _ in range(count)))
    return [result for [result] in answers]


async def first_ok(lifecycle: ResourceLifecycle) -> CheckResult:
    """Probe until a result is ``ok`` (bounded): once the hung run has ended."""
    for _ in range(int(WAIT / 0.005)):
        [result] = await run_checks(lifecycle, 0.05)
        if result.ok:
            return result
        await asyncio.sleep(0.005)
    msg = "the released check never passed"
    raise AssertionError(msg)


async def test_a_hung_sync_check_is_not_started_again_until_it_ends() -> None:
    """A sync check blocked on an Event: one run, ``timeout`` for every probe meanwhile.

    The concurrent probes share the one run and all report ``timeout`` when its
    timeout passes; later probes are answered ``timeout`` at once, naming the run
    still going, and start nothing (no pile of blocked threads). Once it is released
    and its thread ends, the next probe runs the check again. The cache is 0: not
    what holds the runs back.
    """
    release = threading.Event()
    starts = Tally()
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")

    @health_check(built.hangs)
    def hangs(value: str) -> None:
        starts.count("hangs")
        release.wait(WAIT)  # never set while the test probes it hung

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        first = await probe(lifecycle, 20)
        assert {(r.status, r.error) for r in first} == {("timeout", "did not finish within 0.05 s")}
        later = await probe(lifecycle, 20)
        assert {r.status for r in later} == {"timeout"}
        for result in later:
            assert result.error is not None
            assert "still running after" in result.error
            assert result.error.endswith("so not started again until it ends")
        assert starts.runs == {"hangs": 1}

        release.set()
        assert (await first_ok(lifecycle)).check is not None
        assert starts.runs == {"hangs": 2}
    finally:
        release.set()
        assert await lifecycle.stop(5) == []


async def test_a_hung_async_check_that_ignores_cancellation_is_not_started_again() -> None:
    """An async check waiting on an asyncio.Event and ignoring its cancellation.

    Its timeout cancels it, but it goes on waiting: probes report ``timeout`` and
    start nothing while it runs. Released, it ends, and the next probe runs it again.
    """
    release = asyncio.Event()
    starts = Tally()
    cancelled: list[str] = []
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")

    @health_check(built.hangs)
    async def hangs(value: str) -> None:
        starts.count("hangs")
        while not release.is_set():  # never set while the test probes it hung
            try:
                await release.wait()
            except asyncio.CancelledError:  # a check that will not stop
                cancelled.append("ignored")

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        first = await probe(lifecycle, 20)
        assert {(r.status, r.error) for r in first} == {("timeout", "did not finish within 0.05 s")}
        await until(lambda: cancelled == ["ignored"], "the check is cancelled at its timeout")
        later = await probe(lifecycle, 20)
        assert {r.status for r in later} == {"timeout"}
        assert all("still running after" in str(r.error) for r in later)
        assert starts.runs == {"hangs": 1}

        release.set()
        await first_ok(lifecycle)
        assert starts.runs == {"hangs": 2}
    finally:
        release.set()
        assert await lifecycle.stop(5) == []


async def test_a_hung_async_check_is_cancelled_at_its_timeout_and_runs_again_later() -> None:
    """An async check waiting on an asyncio.Event never set: one run for concurrent probes.

    They all report ``timeout``; the run is cancelled then (it no longer hangs), so a
    later probe starts a new run: a check of a service that recovers can pass again.
    """
    never = asyncio.Event()
    starts = Tally()
    cancelled: list[int] = []
    built = containers.DynamicContainer()
    built.hangs = providers.Resource(_yield, "hangs")

    @health_check(built.hangs)
    async def hangs(value: str) -> None:
        starts.count("hangs")
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        first = await probe(lifecycle, 20)
        assert {r.status for r in first} == {"timeout"}
        await until(lambda: len(cancelled) == 1, "the run is cancelled")
        assert starts.runs == {"hangs": 1}
        [again] = await probe(lifecycle, 1)
        assert (again.status, again.error) == ("timeout", "did not finish within 0.05 s")
        assert starts.runs == {"hangs": 2}
        await until(lambda: len(cancelled) == 2, "the second run is cancelled")
    finally:
        assert await lifecycle.stop(5) == []


async def test_a_probe_with_a_shorter_timeout_stops_waiting_for_the_shared_run() -> None:
    """Each probe waits within its own timeout; the run goes on for the others."""
    release = asyncio.Event()
    starts = Tally()
    built = containers.DynamicContainer()
    built.slow = providers.Resource(_yield, "slow")

    @health_check(built.slow)
    async def slow(value: str) -> None:
        starts.count("slow")
        await release.wait()  # set by the test once the impatient probe gave up

    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        patient = asyncio.ensure_future(run_checks(lifecycle, WAIT))
        await until(lambda: waiting(lifecycle) == 1, "the first probe waiting")
        [impatient] = await run_checks(lifecycle, 0.05)
        assert (impatient.status, impatient.error) == ("timeout", "did not finish within 0.05 s")
        release.set()
        [result] = await patient
        assert result.ok
        assert starts.runs == {"slow": 1}
    finally:
        release.set()
        assert await lifecycle.stop(5) == []


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


async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_the_runs_of_a_lifecycle_go_with_it() -> None:
    """The shared runs and cached results live with their lifecycle, not in the process."""
    built = containers.DynamicContainer()
    built.http = providers.Resource(http_client)  # the default check: no declaration
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    [result] = await run_checks(lifecycle, 1, cache=3600)
    assert result.check == "httpx.AsyncClient: not closed"
    assert await lifecycle.stop(5) == []
    assert lifecycle in health._monitors
    gone = weakref.ref(lifecycle)
    del lifecycle, built
    gc.collect()
    assert gone() is None


async def test_an_open_value_that_is_a_task_is_checked_never_awaited() -> None:
    """A resource yielding a background task: the probe neither awaits nor cancels it."""
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    never = asyncio.Event()

    async def open_worker() -> AsyncIterator[asyncio.Task[bool]]:
        task = asyncio.create_task(never.wait())
        yield task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    class Background(containers.DeclarativeContainer):
        worker = providers.Resource(open_worker)

    lifecycle = ResourceLifecycle(Background())
    assert await lifecycle.start() == []
    try:
        [result] = await run_checks(lifecycle, 0.5)
        task = lifecycle.current("worker")
        assert isinstance(task, asyncio.Task)
        assert not task.done()
        assert result.status == "ok"
    finally:
        assert await lifecycle.stop(5.0) == []
