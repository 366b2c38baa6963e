"""The values users really inject, in every kind of view, under one real uvicorn.

``tests/matrix_project`` declares one ``providers.Resource`` per kind of value
(``matrix.KINDS``: Redis clients, PostgreSQL pools, an SQLAlchemy engine, HTTP
clients) and routes ``/<kind>/<view>`` to each kind of view (``matrix.VIEWS``),
which does a real operation with the value. One uvicorn process (``--lifespan on``,
``-W error``, ``PYTHONDEVMODE=1``) serves the whole module; the cells run first,
then the tests of its shutdown, in this file's order.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.matrix_project.matrix import (
    HTTP_KINDS,
    KINDS,
    POSTGRES_KINDS,
    REDIS_KINDS,
    VIEWS,
    connection_name,
    counter_key,
)
from tests.servers.process import SIGTERM, Server, serve

pytestmark = [pytest.mark.server, pytest.mark.services]

# Bounds for the harness, never expectations of speed: the project imports a lot
# (SQLAlchemy, aiohttp, DRF...) in dev mode, on machines shared with other jobs.
START_WITHIN = 120.0
SETTLE_WITHIN = 10.0

ARGV = [
    sys.executable,
    "-W",
    "error",
    "-X",
    "dev",
    "-m",
    "uvicorn",
    "tests.matrix_project.asgi:application",
    "--lifespan",
    "on",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--no-access-log",
]

EXPECTED_LINE = re.compile(
    r"INFO: +\S"  # uvicorn's own records
    r"|INFO lifespan_container[\w.]*: "  # the library's, as the project's LOGGING prints them
)


@dataclass
class Served:
    server: Server
    tag: str
    client: httpx.Client
    stopped: bool = False


@dataclass
class Stopped:
    tag: str
    returncode: int
    stderr: str
    redis_while_serving: Counter[str]
    postgres_while_serving: Counter[str]
    redis_after: Counter[str]
    postgres_after: Counter[str]


def redis_clients(url: str, tag: str) -> Counter[str]:
    """The matrix's Redis connections, by client name."""
    names = {connection_name(tag, kind) for kind in REDIS_KINDS}
    with redis.Redis.from_url(url) as client:
        entries: list[dict[str, Any]] = client.client_list()
    return Counter(entry["name"] for entry in entries if entry.get("name") in names)


def postgres_backends(dsn: str, tag: str) -> Counter[str]:
    """The matrix's PostgreSQL backends, by application_name."""
    names = [connection_name(tag, kind) for kind in POSTGRES_KINDS]
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name = ANY(%s)",
            (names,),
        ).fetchall()
    return Counter(row[0] for row in rows)


def settled(probe: Callable[[], Counter[str]]) -> Counter[str]:
    """Poll ``probe`` until it finds nothing (a service notices a closed connection a
    moment after the client closes it); bounded. Return what it found last."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str, redis_url: str
) -> Iterator[Served]:
    """The matrix project under one uvicorn process, for the whole module."""
    tag = f"lcm-{uuid.uuid4().hex[:8]}"
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.matrix_project.settings",
        "LC_MATRIX_TAG": tag,
        "LC_MATRIX_DSN": postgres_dsn,
        "LC_MATRIX_REDIS": redis_url,
        "LC_MATRIX_UPSTREAM": "http://127.0.0.1:{port}",
        "PYTHONWARNINGS": "error",
        "PYTHONDEVMODE": "1",
    }
    workdir = tmp_path_factory.mktemp("client-matrix")
    try:
        with serve(ARGV, env, workdir) as server:
            ready = server.wait_until_serving("/health/ready", within=START_WITHIN)
            assert ready.status_code == 200, (ready.text, server.stderr)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                yield Served(server, tag, client)
    finally:
        with redis.Redis.from_url(redis_url) as cleaner:
            keys = list(cleaner.scan_iter(match=counter_key(tag, "*")))
            if keys:
                cleaner.delete(*keys)


@pytest.fixture(scope="module")
def stopped(served: Served, postgres_dsn: str, redis_url: str) -> Stopped:
    """SIGTERM to uvicorn's PID, once for the module, after the cells; what it left."""
    redis_while_serving = redis_clients(redis_url, served.tag)
    postgres_while_serving = postgres_backends(postgres_dsn, served.tag)
    served.stopped = True
    served.server.signal(SIGTERM)
    returncode = served.server.wait()
    return Stopped(
        tag=served.tag,
        returncode=returncode,
        stderr=served.server.stderr,
        redis_while_serving=redis_while_serving,
        postgres_while_serving=postgres_while_serving,
        redis_after=settled(lambda: redis_clients(redis_url, served.tag)),
        postgres_after=settled(lambda: postgres_backends(postgres_dsn, served.tag)),
    )


def expected_result(tag: str, kind: str, who: str, request: int) -> dict[str, Any]:
    """What the view ``who`` answers on its ``request``-th call (counted from 1)."""
    if kind in REDIS_KINDS:
        return {"ping": True, "incr": request}
    if kind in POSTGRES_KINDS:
        return {"one": 1, "application_name": connection_name(tag, kind)}
    assert kind in HTTP_KINDS
    return {"status": 200, "body": {"echo": who}}


def errors_of(stderr: str, who: str) -> str:
    """The error records (with their tracebacks) that uvicorn's stderr holds for ``who``."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.endswith(f"Internal Server Error: /{who}")]
    return "\n".join("\n".join(lines[start : start + 40]) for start in starts)


def answer(response: httpx.Response) -> tuple[int, Any]:
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("kind", KINDS)
def test_first_request_and_the_next_two_use_the_open_value(
    served: Served, kind: str, view: str
) -> None:
    """The view's first call, and the two after it, answer 200 with what a real
    operation on the injected value returned (PING and INCR of the view's own key,
    SELECT 1 on a connection of the resource's pool, a GET to the served app)."""
    assert not served.stopped, "the cells run before the shutdown tests (file order)"
    who = f"{kind}/{view}"
    answers = [answer(served.client.get(f"/{who}")) for _ in range(3)]
    expected = [
        (200, {"who": who, "result": expected_result(served.tag, kind, who, request)})
        for request in (1, 2, 3)
    ]
    assert answers == expected, errors_of(served.server.stderr, who)


def test_uvicorn_completes_its_shutdown_on_sigterm(stopped: Stopped) -> None:
    """uvicorn's graceful shutdown completes; it then re-raises SIGTERM (its doing)."""
    assert stopped.returncode == -SIGTERM, stopped.stderr
    assert "Application shutdown complete." in stopped.stderr


def test_stderr_holds_only_info_records(stopped: Stopped) -> None:
    """Under -W error and dev mode, no warning (a coroutine never awaited, an unclosed
    socket or session), traceback or error record reached stderr: every line is an
    INFO record of uvicorn or of the library."""
    unexpected = [line for line in stopped.stderr.splitlines() if not EXPECTED_LINE.match(line)]
    assert unexpected == []


@pytest.mark.parametrize("kind", KINDS)
def test_each_resource_is_opened_and_closed_exactly_once(stopped: Stopped, kind: str) -> None:
    """The resources logger reported one open and one close of the resource."""
    opened = stopped.stderr.count(f"Opened resource '{kind}' in ")
    closed = stopped.stderr.count(f"Closed resource '{kind}' in ")
    assert (opened, closed) == (1, 1), stopped.stderr


def test_redis_clients_are_connected_while_serving_and_gone_after(stopped: Stopped) -> None:
    """CLIENT LIST showed each Redis resource's named connection while serving, and
    shows none of them after the process exited."""
    assert set(stopped.redis_while_serving) == {
        connection_name(stopped.tag, kind) for kind in REDIS_KINDS
    }
    assert stopped.redis_after == Counter()


def test_postgres_backends_are_connected_while_serving_and_gone_after(stopped: Stopped) -> None:
    """pg_stat_activity showed each PostgreSQL resource's backends while serving (by
    application_name), and shows none of them after the process exited."""
    assert set(stopped.postgres_while_serving) == {
        connection_name(stopped.tag, kind) for kind in POSTGRES_KINDS
    }
    assert stopped.postgres_after == Counter()
