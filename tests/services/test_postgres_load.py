"""A real PostgreSQL pool per worker, under a bounded load from another process."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.process import ROOT, SERVERS, Server, serve
from tests.services.postgres import backends

pytestmark = [pytest.mark.server, pytest.mark.services, pytest.mark.load]

WORKERS = 2
POOL_SIZE = 4
REQUESTS = 6_000
CONCURRENCY = 64
WITHIN = 120.0  # bounds the harness, never an expectation of speed


def settle(dsn: str, name: str, expected: int) -> int:
    """Poll until PostgreSQL sees `expected` connections (it notices closes a moment
    after the client); bounded."""
    deadline = time.monotonic() + 10
    while (seen := backends(dsn, name)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def pool_server(tmp_path: Path, dsn: str, name: str) -> tuple[list[str], dict[str, str]]:
    argv, workers = SERVERS["uvicorn-workers-2"]
    assert workers == WORKERS
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "LC_EVENTS": str(tmp_path / "events.log"),
        "LC_DATABASE_URL": dsn,
        "LC_POOL_SIZE": str(POOL_SIZE),
        "LC_APP_NAME": name,
    }
    return argv, env


def wait_for_pools(server: Server, dsn: str, name: str) -> None:
    server.wait_until_serving("/resources")
    assert settle(dsn, name, WORKERS * POOL_SIZE) == WORKERS * POOL_SIZE, server.stderr


@contextlib.contextmanager
def load(url: str, total: int, progress: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """The load generator as a process, stopped and reaped even when the test fails."""
    argv = [sys.executable, str(ROOT / "tests" / "loadgen.py"), url, str(total)]
    argv += [str(CONCURRENCY), *([str(progress)] if progress else [])]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as generator:
        try:
            yield generator
        finally:
            if generator.poll() is None:
                generator.kill()


def test_a_pool_per_worker_serves_a_bounded_load_without_a_failure(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """Zero failed requests; no pool above its size; workers x pool size connections
    while serving, none after shutdown."""
    name = f"lc-load-{uuid.uuid4().hex[:8]}"
    argv, env = pool_server(tmp_path, postgres_dsn, name)
    with serve(argv, env, tmp_path) as server:
        wait_for_pools(server, postgres_dsn, name)
        with load(f"{server.url}/pool", REQUESTS) as generator:
            output, _ = generator.communicate(timeout=WITHIN)
        summary = json.loads(output)
        assert backends(postgres_dsn, name) == WORKERS * POOL_SIZE
        server.signal(signal.SIGTERM)
        server.wait()
    assert summary["statuses"] == {"200": REQUESTS}, summary
    assert summary["errors"] == {}, summary
    assert 1 <= summary["largest_pool_size"] <= POOL_SIZE, summary
    assert settle(postgres_dsn, name, 0) == 0


def test_sigterm_in_the_middle_of_the_load_fails_no_request_on_a_closed_pool(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """Requests the server accepted complete; the rest are refused at the door, never
    answered with an error from a pool that was already closed."""
    name = f"lc-load-{uuid.uuid4().hex[:8]}"
    argv, env = pool_server(tmp_path, postgres_dsn, name)
    progress = tmp_path / "progress"
    with serve(argv, env, tmp_path) as server:
        wait_for_pools(server, postgres_dsn, name)
        with load(f"{server.url}/pool", REQUESTS, progress) as generator:
            deadline = time.monotonic() + WITHIN
            while not (progress.exists() and int(progress.read_text() or 0) >= 1500):
                assert time.monotonic() < deadline
                assert generator.poll() is None
                time.sleep(0.02)
            server.signal(signal.SIGTERM)
            server.wait()
            output, _ = generator.communicate(timeout=WITHIN)
        stderr = server.stderr
    summary = json.loads(output)
    assert set(summary["statuses"]) == {"200"}, summary  # no 5xx: nothing hit a closed pool
    assert summary["statuses"]["200"] >= 1500
    assert "PoolClosed" not in stderr
    assert settle(postgres_dsn, name, 0) == 0
