"""The gunicorn worker's lifespan mode, and `manage.py runasgi` with its reloads."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
import uvicorn
from django.core.handlers.asgi import ASGIHandler
from django.core.management.base import CommandError
from gunicorn.config import Config as GunicornConfig
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.handler import LifespanHandler
from lifespan_container.management.commands.runasgi import application_path, parse_address
from lifespan_container.runtime import Runtime
from lifespan_container.workers import (
    UvicornWorker,
    _lifespan_mode,
    _runs_this_librarys_lifespan,
    drain_limit,
)
from tests.project.events import read
from tests.servers.process import ROOT, serve


def test_the_worker_picks_the_lifespan_mode_from_the_application() -> None:
    """On for this library's handler, off for Django's own (no noise), auto otherwise."""
    assert _lifespan_mode(LifespanHandler(Runtime(None))) == "on"
    assert _lifespan_mode(ASGIHandler()) == "off"
    assert _lifespan_mode(object()) == "auto"


def test_the_worker_bounds_the_drain_of_applications_running_this_librarys_lifespan() -> None:
    """This library's handler, or (auto) one wrapping it where the app is installed;
    never Django's own handler, which runs no lifespan."""
    assert _runs_this_librarys_lifespan("on")
    assert _runs_this_librarys_lifespan("auto")  # lifespan_container is installed here
    assert not _runs_this_librarys_lifespan("off")


@pytest.mark.parametrize(
    ("graceful_timeout", "shutdown_timeout", "configured", "drain"),
    [
        (3, 1, None, 1.0),  # the case: 3 - 1 - 1
        (30, 10, None, 19.0),
        (30, 10, 5, 5.0),  # a smaller timeout_graceful_shutdown is kept
        (30, 10, 0, 0.0),
        (30, 2.5, None, 26.5),
    ],
)
def test_the_drain_gets_what_the_graceful_timeout_leaves_after_the_shutdown(
    graceful_timeout: int, shutdown_timeout: float, configured: float | None, drain: float
) -> None:
    """Drain = --graceful-timeout - SHUTDOWN_TIMEOUT - 1 s margin, or the smaller
    timeout_graceful_shutdown the worker's config sets; no warning."""
    assert drain_limit(graceful_timeout, shutdown_timeout, configured) == (drain, [])


@pytest.mark.parametrize(
    ("graceful_timeout", "shutdown_timeout", "drain"),
    [
        (3, 3, 1.0),  # SHUTDOWN_TIMEOUT = graceful timeout
        (3, 5, 1.0),  # SHUTDOWN_TIMEOUT > graceful timeout
        (3, 2, 1.0),  # fits exactly, with nothing left to drain
        (30, 30, 14.5),  # both defaults
        (0, 1, 0.0),
    ],
)
def test_when_the_shutdown_leaves_no_time_to_drain_the_worker_warns_and_splits(
    graceful_timeout: int, shutdown_timeout: float, drain: float
) -> None:
    """SHUTDOWN_TIMEOUT + 1 s >= --graceful-timeout cannot work: the drain gets half of
    the graceful timeout after the margin, and the warning names both settings and
    the fix."""
    seconds, [warning] = drain_limit(graceful_timeout, shutdown_timeout)
    assert seconds == drain
    assert f'LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] ({shutdown_timeout:g} s)' in warning
    assert f"--graceful-timeout ({graceful_timeout} s)" in warning
    assert "Set --graceful-timeout to at least SHUTDOWN_TIMEOUT + 1 s" in warning
    assert "or lower SHUTDOWN_TIMEOUT" in warning


def test_a_larger_uvicorn_timeout_graceful_shutdown_is_cut_to_the_limit_with_a_warning() -> None:
    """The worker's config asks for 25 s of drain, the arithmetic allows 19 s: 19 s,
    and a warning saying which --graceful-timeout would allow 25 s."""
    seconds, [warning] = drain_limit(30, 10, 25)
    assert seconds == 19.0
    assert "timeout_graceful_shutdown (25 s) is cut to 19 s" in warning
    assert "raise --graceful-timeout to at least 36" in warning
    seconds, warnings = drain_limit(3, 3, 2)  # both: the split (1 s) is the limit
    assert seconds == 1.0
    assert len(warnings) == 2


class RecordingLog:
    """Stands in for gunicorn's logger: keeps the warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def booting_worker(graceful_timeout: int, configured: int | None = None) -> UvicornWorker:
    """The parts of a worker the drain bound reads: gunicorn's and uvicorn's configs."""
    worker = UvicornWorker.__new__(UvicornWorker)  # no __init__: it rewires uvicorn's loggers
    worker.cfg = GunicornConfig()
    worker.cfg.set("graceful_timeout", graceful_timeout)
    worker.config = uvicorn.Config("tests.project.asgi:application")
    worker.config.timeout_graceful_shutdown = configured
    worker.log = RecordingLog()
    return worker


@pytest.mark.parametrize(("shutdown_timeout", "warned"), [(1.0, False), (5.0, True)])
def test_the_worker_bounds_uvicorns_drain_at_boot_and_warns_in_its_log(
    settings: SettingsWrapper, shutdown_timeout: float, warned: bool
) -> None:
    """The worker reads SHUTDOWN_TIMEOUT from the settings and --graceful-timeout from
    gunicorn, sets uvicorn's timeout_graceful_shutdown, and logs a WARNING when the
    arithmetic cannot work."""
    settings.LIFESPAN_CONTAINER = {
        **settings.LIFESPAN_CONTAINER,
        "SHUTDOWN_TIMEOUT": shutdown_timeout,
    }
    worker = booting_worker(graceful_timeout=3)
    worker._bound_the_drain()
    assert worker.config.timeout_graceful_shutdown == 1.0
    if warned:
        [warning] = worker.log.warnings
        assert warning.startswith('LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (5 s)'), warning
        assert "--graceful-timeout (3 s)" in warning
    else:
        assert worker.log.warnings == []


def test_the_worker_keeps_a_smaller_configured_drain_and_skips_invalid_settings(
    settings: SettingsWrapper,
) -> None:
    """A subclass's CONFIG_KWARGS timeout_graceful_shutdown below the limit is kept; with
    an invalid LIFESPAN_CONTAINER the drain is left alone (the startup reports it)."""
    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, "SHUTDOWN_TIMEOUT": 1.0}
    worker = booting_worker(graceful_timeout=30, configured=5)
    worker._bound_the_drain()
    assert (worker.config.timeout_graceful_shutdown, worker.log.warnings) == (5, [])
    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, "SHUTDOWN_TIMEOUT": -1}
    worker = booting_worker(graceful_timeout=30)
    worker._bound_the_drain()
    assert (worker.config.timeout_graceful_shutdown, worker.log.warnings) == (None, [])


def test_runasgi_finds_the_application(settings: SettingsWrapper) -> None:
    settings.ASGI_APPLICATION = "myproject.asgi.application"
    assert application_path() == "myproject.asgi:application"
    del settings.ASGI_APPLICATION
    settings.WSGI_APPLICATION = "myproject.wsgi.application"
    assert application_path() == "myproject.asgi:application"
    del settings.WSGI_APPLICATION
    with pytest.raises(CommandError, match="ASGI_APPLICATION"):
        application_path()


def test_runasgi_parses_addresses() -> None:
    assert parse_address("8001") == ("127.0.0.1", 8001)
    assert parse_address("127.0.0.1:8002") == ("127.0.0.1", 8002)
    with pytest.raises(CommandError, match="not a port"):
        parse_address("localhost")


@pytest.mark.server
def test_runasgi_serves_and_each_reload_runs_a_full_shutdown_and_startup(
    tmp_path: Path,
) -> None:
    """A change to a watched file: the old process shuts down, a new one starts up."""
    project = tmp_path / "project"
    project.mkdir()
    watched = project / "touched.py"
    watched.write_text("VERSION = 1\n")
    events = tmp_path / "events.log"
    argv = [
        sys.executable,
        str(ROOT / "tests" / "manage_project.py"),
        "runasgi",
        "127.0.0.1:{port}",
        "--app",
        "tests.project.asgi:application",
    ]
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "LC_EVENTS": str(events),
        "LC_BASE_DIR": str(project),
    }
    with serve(argv, env, tmp_path) as server:
        assert server.wait_until_serving("/resources").status_code == 200
        watched.write_text("VERSION = 2\n")
        deadline = time.monotonic() + 30
        while len({pid for pid, e in read(events) if e == "startup receiver"}) < 2:
            assert time.monotonic() < deadline, server.stderr
            time.sleep(0.1)
        assert server.wait_until_serving("/resources").status_code == 200
        server.signal(signal.SIGINT)
        server.wait()
    first, second = sorted(
        {pid for pid, e in read(events) if e == "startup receiver"},
        key=[pid for pid, _ in read(events)].index,
    )
    log = read(events)
    first_events = [e for pid, e in log if pid == first]
    second_events = [e for pid, e in log if pid == second]
    assert first_events[-3] == "shutdown receiver"
    assert "close http" in first_events[-2:]
    assert second_events[2] == "startup receiver"
    last_close_of_first = max(i for i, (pid, e) in enumerate(log) if pid == first)
    first_open_of_second = min(i for i, (pid, e) in enumerate(log) if pid == second)
    assert last_close_of_first < first_open_of_second  # a full shutdown, then a fresh startup
