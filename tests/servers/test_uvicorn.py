"""The handler under a real `uvicorn --lifespan on` process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.project.events import read
from tests.servers.process import SIGTERM, serve, uvicorn
from tests.servers.process import project_env as env

pytestmark = pytest.mark.server


def test_serves_with_resources_open_and_shuts_down_once_on_sigterm(tmp_path: Path) -> None:
    """Startup runs once before the first request; SIGTERM runs shutdown once.

    uvicorn (0.29 and later) re-raises the captured SIGTERM once its graceful
    shutdown is complete, so the process ends "killed by SIGTERM" (-15; 143 in a
    shell) rather than with 0: that is uvicorn's doing, after a clean shutdown.
    """
    events = tmp_path / "events.log"
    with serve(uvicorn(), env(events), tmp_path) as server:
        response = server.wait_until_serving("/resources")
        assert response.status_code == 200
        assert response.json() == {"http": "http-client", "cache": "cache", "state": []}
        server.signal(SIGTERM)
        assert server.wait() == -SIGTERM
        assert "Application shutdown complete." in server.stderr

    log = [event for _, event in read(events)]
    assert {pid for pid, _ in read(events)} == {server.process.pid}
    # The two independent resources open (and close) concurrently, in either order.
    assert sorted(log[:2]) == ["open cache", "open http"]
    assert log[2:5] == ["startup receiver", "request", "shutdown receiver"]
    assert sorted(log[5:]) == ["close cache", "close http"]


def test_failing_startup_receiver_makes_uvicorn_exit_3(tmp_path: Path) -> None:
    """uvicorn exits 3 and prints the receiver's name and error; resources were closed."""
    events = tmp_path / "events.log"
    with serve(uvicorn(), env(events, LC_FAILING_RECEIVER="1"), tmp_path) as server:
        assert server.wait() == 3
        stderr = server.stderr
    assert (
        "Startup failed: receiver 'tests.project.apps.warm_search_index' raised "
        "RuntimeError: search index missing." in stderr
    )
    assert "Traceback" in stderr  # the receiver's traceback is logged
    assert "request" not in [event for _, event in read(events)]
    assert sorted(event for _, event in read(events) if "close" in event) == [
        "close cache",
        "close http",
    ]


def test_failing_resource_makes_uvicorn_exit_3_and_closes_its_siblings(tmp_path: Path) -> None:
    """uvicorn exits 3 naming the provider and its error; opened siblings were closed."""
    events = tmp_path / "events.log"
    container = "tests.project.containers.FailingContainer"
    with serve(uvicorn(), env(events, LC_CONTAINER=container), tmp_path) as server:
        assert server.wait() == 3
        stderr = server.stderr
    assert (
        "Startup failed: resource 'db_pool' raised ConnectionRefusedError: could not connect "
        "to 10.255.255.1:5432." in stderr
    )
    log = [event for _, event in read(events)]
    assert sorted(e for e in log if e.startswith("open")) == ["open cache", "open http"]
    assert sorted(e for e in log if e.startswith("close")) == ["close cache", "close http"]
    assert "startup receiver" not in log


def test_every_view_kind_is_injected_under_uvicorn(tmp_path: Path) -> None:
    """Function, class-based and DRF views, sync and async, get the open resources."""
    events = tmp_path / "events.log"
    expected = {
        "/async-function": {"echo": "async-function"},
        "/sync-function": {"cache": "cache"},
        "/sync-bridge": {"upstream": {"echo": "sync-bridge"}, "on_lifespan_loop": True},
        "/class-based": {"echo": "class-based"},
        "/sync-class-based": {"cache": "cache"},
        "/redirect": {"echo": "http-client"},  # a generic view; the redirect is followed
        "/api-view": {"cache": "cache"},
        "/viewset/": {"cache": "cache"},
        "/viewset/http/": {"http": "http-client"},
        "/drf-function": {"cache": "cache"},
    }
    upstream = {"LC_UPSTREAM": "http://127.0.0.1:{port}"}
    with serve(uvicorn(), env(events, **upstream), tmp_path) as server:
        server.wait_until_serving("/resources")
        with httpx.Client(base_url=server.url, timeout=10, follow_redirects=True) as client:
            answers = {path: client.get(path) for path in expected}
        server.signal(SIGTERM)
        assert server.wait() == -SIGTERM
    for path, response in answers.items():
        assert response.status_code == 200, (path, response.text)
        assert response.json() == expected[path], path
