"""The gunicorn worker's lifespan mode, and `manage.py runasgi` with its reloads."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container._runtime import Runtime
from lifespan_container.handler import LifespanHandler
from lifespan_container.management.commands.runasgi import application_path, parse_address
from lifespan_container.workers import lifespan_mode
from tests.project.events import read
from tests.servers import ROOT, serve


def test_the_worker_picks_the_lifespan_mode_from_the_application() -> None:
    """On for this library's handler, off for Django's own (no noise), auto otherwise."""
    assert lifespan_mode(LifespanHandler(Runtime(None))) == "on"
    assert lifespan_mode(ASGIHandler()) == "off"
    assert lifespan_mode(object()) == "auto"


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
