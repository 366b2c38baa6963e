"""Readiness, liveness, health and `manage.py resources --check` against real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dependency_injector import containers, providers

from lifespan_container.health import health_check
from tests.project.events import read, record
from tests.servers.process import ROOT, SIGTERM, free_port, gunicorn, project_env, serve, uvicorn

pytestmark = pytest.mark.server

OPERATIONS = "tests.project.containers.OperationsContainer"


def env(events: Path, **extra: str) -> dict[str, str]:
    return project_env(events, LC_CONTAINER=OPERATIONS, **extra)


def logged(events: Path, event: str) -> bool:
    return event in [e for _, e in read(events)]


def test_uvicorn_answers_readiness_only_between_a_held_startup_and_a_held_shutdown(
    tmp_path: Path,
) -> None:
    """Under uvicorn, readiness is 200 exactly while serving; during held phases no answer.

    uvicorn binds its socket only after the lifespan startup completed, and closes it
    (and every keep-alive connection) before it sends the lifespan shutdown: a probe
    is refused in both phases, which a load balancer or Kubernetes counts as not ready.
    """
    events = tmp_path / "events.log"
    release_startup, release_shutdown = tmp_path / "startup", tmp_path / "shutdown"
    variables = env(
        events, LC_RELEASE_STARTUP=str(release_startup), LC_RELEASE_SHUTDOWN=str(release_shutdown)
    )
    with serve(uvicorn(), variables, tmp_path) as server:
        server.wait_for(lambda: logged(events, "held opening"), "startup holding")
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/health/ready", timeout=5)

        release_startup.touch()
        ready = server.wait_until_serving("/health/ready")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        live = httpx.get(server.url + "/health/live", timeout=5)
        assert (live.status_code, live.json()) == (200, {"status": "alive", "phase": "serving"})
        assert ready.headers["Cache-Control"].startswith("max-age=0")

        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/health/ready").status_code == 200
            server.signal(SIGTERM)
            server.wait_for(lambda: logged(events, "held closing"), "shutdown holding")
            with pytest.raises(httpx.TransportError):  # the kept-alive connection was closed
                client.get("/health/ready")
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/health/ready", timeout=5)

        release_shutdown.touch()
        assert server.wait() == -SIGTERM
    assert [e for _, e in read(events) if e.startswith("held")] == [
        "held opening",
        "held open",
        "held closing",
        "held closed",
    ]


@pytest.mark.slow
def test_readiness_is_503_when_gunicorn_serves_without_a_completed_startup(
    tmp_path: Path,
) -> None:
    """gunicorn's own asgi worker gives up on a startup after 30 s and serves anyway.

    That happens when STARTUP_TIMEOUT is longer than gunicorn's fixed 30 s (with a
    shorter one, the startup fails first and the worker exits 3). The library's
    startup is cancelled and closes what it opened; readiness then answers 503, so a
    load balancer keeps traffic away from that worker.
    """
    events = tmp_path / "events.log"
    variables = env(events, LC_RELEASE_STARTUP=str(tmp_path / "never"), LC_STARTUP_TIMEOUT="90")
    with serve(gunicorn("-k", "asgi", "-w", "1"), variables, tmp_path) as server:
        server.wait_for(lambda: logged(events, "held opening"), "startup holding")
        ready = server.wait_until_serving("/health/ready", within=60)  # after gunicorn's 30 s
        # gunicorn serves without waiting for the cancelled startup to clean up.
        assert ready.status_code == 503
        assert ready.json()["status"] in {"starting", "stopped"}

        def stopped() -> bool:
            answer = httpx.get(server.url + "/health/ready", timeout=5)
            return (answer.status_code, answer.json()) == (503, {"status": "stopped"})

        server.wait_for(stopped, "the cancelled startup's cleanup")
        health = httpx.get(server.url + "/health/", timeout=10)
        assert health.status_code == 503
        assert {r["status"] for r in health.json()["resources"].values()} == {"not open"}
        server.signal(SIGTERM)
        server.wait()
    assert "Opening resource 'held' was cancelled" in server.stderr
    assert sorted(e for _, e in read(events) if e.startswith("close")) == [
        "close cache",
        "close http",
    ]


@pytest.mark.services
def test_health_under_uvicorn_with_real_postgres_and_redis(
    tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    """200 with every check passing; 503 naming the resource whose check fails or hangs."""
    events = tmp_path / "events.log"
    real = {"LC_DATABASE_URL": postgres_dsn, "LC_REDIS_URL": redis_url}
    for name in ("healthy", "broken"):
        (tmp_path / name).mkdir()
    with serve(uvicorn(), env(events, **real), tmp_path / "healthy") as server:
        response = server.wait_until_serving("/health/")
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "ok"
        assert body["phase"] == "serving"
        resources = body["resources"]
        assert set(resources) == {
            "http",
            "cache",
            "upstream",
            "pool",
            "held",
            "redis",
            "broken_redis",
        }
        assert {name: r["status"] for name, r in resources.items()} == dict.fromkeys(
            resources, "ok"
        )
        # Checked: the pool (SELECT 1), Redis (PING), the httpx client, the declared one.
        for name in ("pool", "redis", "upstream", "held"):
            assert resources[name]["latency_ms"] >= 0, name
        for name in ("http", "cache", "broken_redis"):  # plain values and None: nothing to check
            assert resources[name]["latency_ms"] is None, name
        assert "error" not in resources["pool"]  # DEBUG is off: no details
        server.signal(SIGTERM)
        server.wait()

    broken = {
        **real,
        "LC_BROKEN_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "LC_HANGING_CHECK": "1",
        "LC_HEALTH_CHECK_TIMEOUT": "0.5",
    }
    with serve(uvicorn(), env(events, **broken), tmp_path / "broken") as server:
        response = server.wait_until_serving("/health/")
        body = response.json()
        assert response.status_code == 503, body
        assert body["status"] == "failing"
        statuses = {name: r["status"] for name, r in body["resources"].items()}
        assert statuses["broken_redis"] == "failing"
        assert statuses["held"] == "timeout"  # a check that never ends is cut off
        assert statuses["pool"] == statuses["redis"] == "ok"
        assert body["resources"]["held"]["latency_ms"] >= 500
        server.signal(SIGTERM)
        server.wait()


def plain(value: str) -> Iterator[str]:
    yield value


class ExitingCheckContainer(containers.DeclarativeContainer):
    """Served by uvicorn below: the health check of ``exits`` calls ``sys.exit()``."""

    exits = providers.Resource(plain, "exits")
    fine = providers.Resource(plain, "fine")


@health_check(ExitingCheckContainer.exits)
def exit_the_process(value: str) -> None:
    record("check exits")
    sys.exit()  # in the check's thread; it used to be re-raised on the event loop


def test_a_check_calling_sys_exit_leaves_uvicorn_serving(tmp_path: Path) -> None:
    """A sync check that calls sys.exit() fails its resource; the server goes on serving.

    It used to stop uvicorn with no lifespan shutdown. The test probes until the
    check ran (and exited) twice, the second time after the cached result expired;
    every probe is answered, then SIGTERM runs the lifespan shutdown as usual.
    """
    events = tmp_path / "events.log"
    variables = project_env(
        events, LC_CONTAINER="tests.servers.test_probes_server.ExitingCheckContainer"
    )

    def checked() -> int:
        return [e for _, e in read(events)].count("check exits")

    with serve(uvicorn(), variables, tmp_path) as server:
        answers: list[tuple[int, dict[str, str]]] = []

        def probed_twice() -> bool:
            response = httpx.get(server.url + "/health/", timeout=5)
            resources = response.json()["resources"]
            answers.append((response.status_code, {n: r["status"] for n, r in resources.items()}))
            return checked() >= 2  # the default HEALTH_CHECK_CACHE (1 s) has passed

        server.wait_until_serving("/health/live")
        server.wait_for(probed_twice, "a second run of the exiting check")
        assert set(map(repr, answers)) == {repr((503, {"exits": "failing", "fine": "ok"}))}
        live = httpx.get(server.url + "/health/live", timeout=5)
        assert (live.status_code, live.json()) == (200, {"status": "alive", "phase": "serving"})
        assert server.process.poll() is None
        server.signal(SIGTERM)
        server.wait()
    assert "Application shutdown complete." in server.stderr


def manage_resources(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", "resources", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.project.settings",
            "LC_CONTAINER": OPERATIONS,
            **variables,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.services
def test_resources_check_passes_against_the_local_postgres_and_redis(
    postgres_dsn: str, redis_url: str
) -> None:
    result = manage_resources("--check", LC_DATABASE_URL=postgres_dsn, LC_REDIS_URL=redis_url)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    # The health check table's row: resource, status, latency ("12.3 ms"), check.
    assert rows["pool"][1] == "ok"
    assert re.fullmatch(r"\d+\.\d", rows["pool"][2]), rows["pool"]
    assert rows["pool"][3] == "ms"
    assert "psycopg_pool.AsyncConnectionPool: SELECT 1" in result.stdout
    assert "redis.asyncio.Redis: PING" in result.stdout
    assert rows["redis"][1] == "ok"
    assert "Opened resource 'pool'" in result.stderr
    assert "Closed resource 'pool'" in result.stderr


@pytest.mark.services
def test_resources_check_fails_naming_the_pool_when_the_database_is_unreachable(
    redis_url: str,
) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    result = manage_resources(
        "--check", LC_DATABASE_URL=unreachable, LC_POOL_WAIT="1", LC_REDIS_URL=redis_url
    )
    assert result.returncode == 1
    assert "CommandError: Startup failed: resource 'pool' raised PoolTimeout" in result.stderr
    # Everything that had opened was closed again.
    assert "Closed resource 'redis'" in result.stderr
    assert "Health checks" not in result.stdout
