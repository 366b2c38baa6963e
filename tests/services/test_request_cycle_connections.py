"""Django's database connections after a request: ours leaves open what Django leaves open.

Issue 17. Our handler (``FAST_PATH`` on, and off) and Django's own
``django.core.asgi.get_asgi_application()`` serve tests/cycle_project as uvicorn
processes on 127.0.0.1, each stopped by its PID, each with its own
``application_name``, with ``CONN_MAX_AGE`` 0 and 60. A view or a middleware opens
the connection of the request's thread (``DATABASES["default"]``, the local
PostgreSQL); the test counts the process's backends in ``pg_stat_activity`` after
the first request, after the last, and after ``/collect`` has run the garbage
collector (the project runs without it, see its settings), and asserts that every
handler leaves the count Django's leaves.

What Django does (``ASGIHandler``): each request runs in a ``ThreadSensitiveContext``,
its sync code in a thread of its own that ends with the request, and
``request_finished`` (``close_old_connections``) runs in that thread.

- ``CONN_MAX_AGE = 0``: the connection is closed at the request's end: no backend
  is left after any request.
- ``CONN_MAX_AGE = 60``: the connection is not closed (it is not old); the thread
  ends, nothing reuses its connection, which stays open until the garbage collector
  frees its ``DatabaseWrapper``: one backend more after each request that queried,
  none after ``/collect``.
- A request that queries nothing opens no connection: no backend, whatever the age.

Connections close after the response is sent: each count is polled (bounded) until
it is the expected one, and the counts that were there when the wait ended are
compared, so a wrong count fails with the numbers of every handler.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers.process import Server, python_module, serve
from tests.services.postgres import backends

pytestmark = [pytest.mark.server, pytest.mark.services]

REQUESTS = 20
SETTLE_WITHIN = 5.0
"""Seconds a count may take to become the expected one: bounds the harness, never a timing."""

HANDLERS: dict[str, tuple[str, str]] = {
    # name: (ASGI application, uvicorn's --lifespan)
    "django": ("tests.cycle_project.django_asgi:application", "off"),  # Django's has none
    "ours": ("tests.cycle_project.asgi:application", "on"),
    "ours-no-fast-path": ("tests.cycle_project.asgi:application", "on"),
}


@dataclass(frozen=True)
class Case:
    middleware: str  # LC_CYCLE_MIDDLEWARE
    path: str
    queries: bool  # whether each request opens a connection


CASES: dict[str, Case] = {
    "sync-view": Case("", "/sync", queries=True),
    "async-view-sync-to-async": Case("", "/async-orm", queries=True),
    "mixin-middleware-async-view": Case("mixin", "/async", queries=True),
    "sync-middleware-async-view": Case("sync", "/async", queries=True),
    "async-view-no-query": Case("", "/async", queries=False),
}
MAX_AGES = [0, 60]


@dataclass(frozen=True)
class Counts:
    """Backends of the process in ``pg_stat_activity``."""

    after_first: int
    after_last: int
    after_collect: int


def expected(case: Case, max_age: int) -> Counts:
    """What Django leaves (see the module's docstring)."""
    if max_age == 0 or not case.queries:
        return Counts(0, 0, 0)
    return Counts(1, REQUESTS, 0)


def settle(dsn: str, name: str, wanted: int) -> int:
    """The backends tagged ``name`` once they are ``wanted`` (bounded): the last count seen."""
    deadline = time.monotonic() + SETTLE_WITHIN
    count = backends(dsn, name)
    while count != wanted and time.monotonic() < deadline:
        time.sleep(0.02)
        count = backends(dsn, name)
    return count


@contextlib.contextmanager
def servers(
    dsn: str, case: Case, max_age: int, tmp_path: Path, run: str
) -> Iterator[dict[str, tuple[Server, str]]]:
    """Each handler's server (started together), with its ``application_name``."""
    with contextlib.ExitStack() as stack:
        started: dict[str, tuple[Server, str]] = {}
        for handler, (app, lifespan) in HANDLERS.items():
            name = f"lc_cycle_{run}_{handler}"
            workdir = tmp_path / handler
            workdir.mkdir()
            argv = python_module(
                "uvicorn",
                app,
                "--lifespan",
                lifespan,
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--no-access-log",
            )
            env = {
                "DJANGO_SETTINGS_MODULE": "tests.cycle_project.settings",
                "LC_CYCLE_DSN": dsn,
                "LC_CYCLE_APP_NAME": name,
                "LC_CYCLE_MAX_AGE": str(max_age),
                "LC_CYCLE_MIDDLEWARE": case.middleware,
                "LC_CYCLE_HANDLER": handler,
            }
            started[handler] = (stack.enter_context(serve(argv, env, workdir)), name)
        yield started


def answered(response: httpx.Response, case: Case) -> None:
    """The request was served, and queried (a backend's PID) when the case queries."""
    assert response.status_code == 200, response.text
    assert response.text.isdigit() is case.queries, response.text


def measure(server: Server, dsn: str, name: str, case: Case, wanted: Counts) -> Counts:
    # The first request of the case is the one that finds the server up.
    answered(server.wait_until_serving(case.path), case)
    after_first = settle(dsn, name, wanted.after_first)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(REQUESTS - 1):
            answered(client.get(case.path), case)
        after_last = settle(dsn, name, wanted.after_last)
        collected = client.get("/collect")
        assert collected.status_code == 200, collected.text
    after_collect = settle(dsn, name, wanted.after_collect)
    return Counts(after_first, after_last, after_collect)


@pytest.mark.parametrize("max_age", MAX_AGES, ids=[f"max-age-{age}" for age in MAX_AGES])
@pytest.mark.parametrize("case_name", list(CASES))
def test_connections_left_after_requests_are_djangos(
    postgres_dsn: str, tmp_path: Path, case_name: str, max_age: int
) -> None:
    case = CASES[case_name]
    wanted = expected(case, max_age)
    run = uuid.uuid4().hex[:12]
    with servers(postgres_dsn, case, max_age, tmp_path, run) as started:
        counts = {
            handler: measure(server, postgres_dsn, name, case, wanted)
            for handler, (server, name) in started.items()
        }
        for server, _ in started.values():
            assert "Traceback" not in server.stderr, server.stderr
    assert counts["django"] == wanted, counts  # what Django does, as the docstring says
    assert counts["ours"] == counts["django"], counts
    assert counts["ours-no-fast-path"] == counts["django"], counts
