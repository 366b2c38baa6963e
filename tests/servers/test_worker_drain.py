"""gunicorn's graceful timeout: the library's worker bounds the drain so that the
lifespan shutdown runs, and finishes, before the master's SIGKILL."""

from __future__ import annotations

import re
import signal
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.drain_project.containers import POOL_SIZE
from tests.drain_project.urls import QUERY_SECONDS
from tests.servers.process import Server, python_module, serve
from tests.services.postgres import backends

BACKENDS_GONE_WITHIN = 5.0
"""PostgreSQL ends a backend shortly after its client closed the connection (a
cancelled query's connection is closed by psycopg, and its backend can still be
listed for a moment); a connection never closed keeps its backend for good."""


def backends_left(dsn: str, name: str) -> int:
    """The backends still there once closed connections had time to end (bounded)."""
    deadline = time.monotonic() + BACKENDS_GONE_WITHIN
    left = backends(dsn, name)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = backends(dsn, name)
    return left


WORKERS = 2
GRACEFUL_TIMEOUT = 3  # below QUERY_SECONDS: the master kills what is still running after it
SHUTDOWN_TIMEOUT = 1  # below GRACEFUL_TIMEOUT, as the docs advise
MAX_REQUESTS = 16  # sent one by one until every worker has one, at most
CLIENT_TIMEOUT = 30.0  # bounds each request of the harness, never an expectation of speed


def pids(pattern: str, stderr: str) -> list[int]:
    """The process ids of the lines that match ``pattern`` (a group of digits)."""
    return [int(pid) for pid in re.findall(pattern, stderr)]


def booted(server: Server) -> list[int]:
    return pids(r"Booting worker with pid: (\d+)", server.stderr)


def logged(server: Server, message: str) -> list[int]:
    """The process ids of the drain project's log lines saying ``message``."""
    return pids(rf"pid=(\d+) INFO tests\.drain_project\.urls: {re.escape(message)}", server.stderr)


def slow_request(url: str) -> int | str:
    """One request on its own connection: its status, or the transport error's name."""
    try:
        return httpx.get(f"{url}/slow-query", timeout=CLIENT_TIMEOUT).status_code
    except httpx.TransportError as error:
        return type(error).__name__


@pytest.mark.server
@pytest.mark.services
@pytest.mark.slow  # two gunicorn servers, each waiting out its drain bound
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGQUIT], ids=["SIGTERM", "SIGQUIT"])
def test_requests_outlasting_the_graceful_timeout_still_let_every_worker_close_its_pool(
    signum: signal.Signals, tmp_path: Path, postgres_dsn: str
) -> None:
    """gunicorn -w 2 --graceful-timeout 3, SHUTDOWN_TIMEOUT 1, queries of 8 s (in each
    worker the kernel gave one), then SIGTERM or SIGQUIT to the master: each busy
    worker cancels its requests at the drain bound, the shutdown waits for them to
    unwind (the queries are cancelled in PostgreSQL) and every worker closes its pool
    before the kill, so PostgreSQL has none of the pools' backends left."""
    name = f"lc-drain-{uuid.uuid4().hex[:8]}"
    argv = python_module(
        "gunicorn",
        "tests.drain_project.asgi:application",
        "-k",
        "lifespan_container.workers.UvicornWorker",
        "-w",
        str(WORKERS),
        "-b",
        "127.0.0.1:{port}",
        "--no-control-socket",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.drain_project.settings",
        "LC_DRAIN_DSN": postgres_dsn,
        "LC_DRAIN_APP_NAME": name,
        "LC_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }
    with (
        serve(argv, env, tmp_path) as server,
        ThreadPoolExecutor(max_workers=MAX_REQUESTS) as clients,
    ):
        assert server.wait_until_serving("/health/ready").status_code == 200
        server.wait_for(lambda: len(booted(server)) == WORKERS, "booted workers")
        workers = set(booted(server))
        server.wait_for(lambda: backends(postgres_dsn, name) == WORKERS * POOL_SIZE, "open pools")
        before = backends(postgres_dsn, name)
        requests: list[Future[int | str]] = []
        # The kernel picks the worker that accepts: often the same one, so requests
        # go one at a time until every worker has one (or the bound is reached).
        while set(logged(server, "Slow request arrives.")) != workers:
            if len(requests) == MAX_REQUESTS:
                break
            requests.append(clients.submit(slow_request, server.url))
            server.wait_for(
                lambda: len(logged(server, "Slow request arrives.")) == len(requests),
                "the request in a view",
            )
        busy = set(logged(server, "Slow request arrives."))
        # Each busy worker's first request finds a free connection: each one queries.
        server.wait_for(
            lambda: set(logged(server, "Slow query begins.")) == busy, "a query per busy worker"
        )
        server.signal(signum)
        code = server.wait()
        after = backends_left(postgres_dsn, name)  # once the master exited
        answers = [request.result(timeout=CLIENT_TIMEOUT) for request in requests]
    stderr = server.stderr
    closed = pids(r"pid=(\d+) INFO lifespan_container\.resources: Closed resource 'pool'", stderr)
    cancelled = pids(
        r"\[(\d+)\] \[ERROR\] Cancel \d+ running task\(s\), timeout graceful shutdown exceeded",
        stderr,
    )
    assert {
        "pools' backends while serving": before,
        "workers that cancelled their requests (uvicorn)": sorted(cancelled),
        "workers that closed their pool": sorted(closed),
        "master's exit code": code,
        "pools' backends once the master has exited": after,
    } == {
        "pools' backends while serving": WORKERS * POOL_SIZE,
        "workers that cancelled their requests (uvicorn)": sorted(busy),
        "workers that closed their pool": sorted(workers),
        "master's exit code": 0,
        "pools' backends once the master has exited": 0,
    }, stderr
    assert 200 not in answers, answers  # cut short: no query ran its QUERY_SECONDS
    assert "leaves no time to drain" not in stderr  # 3 s - 1 s - 1 s: the arithmetic works
    assert QUERY_SECONDS > GRACEFUL_TIMEOUT
