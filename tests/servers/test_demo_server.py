"""The demo, started the way the README's demo command starts it, under real uvicorn."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers.process import ROOT, serve

pytestmark = pytest.mark.server

PAGES = {
    "/": "<h1>Weather demo</h1>",
    "/weather/Oslo": '"source": "upstream"',
    "/stations/": '"backend": "sqlite"',
    "/report": "Tromsø:",
    "/api/stations/OSL": '"name":"Oslo"',  # DRF renders compact JSON
    "/visits": '{"visits": [',  # the request-scoped connection
    "/visits.csv": "station,visitor,visited_at",
}


def test_demo_serves_every_page_and_closes_every_resource_on_ctrl_c(tmp_path: Path) -> None:
    """No PostgreSQL, no Redis: every page answers 200 with data; Ctrl+C closes all."""
    env = {
        "DEMO_PORT": "{port}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'weather.sqlite3'}",
        "REDIS_URL": "",
    }
    argv = [sys.executable, str(ROOT / "demo" / "run.py")]
    with serve(argv, env, tmp_path) as server:
        server.wait_until_serving("/")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answers = {path: client.get(path) for path in PAGES}
        server.signal(signal.SIGINT)  # what Ctrl+C sends
        assert server.wait() in (0, -signal.SIGINT)
        log = server.stderr
    for path, expected in PAGES.items():
        assert answers[path].status_code == 200, (path, answers[path].text)
        assert expected in answers[path].text, path
    assert (tmp_path / "stdout.log").read_text().startswith("Weather demo on http://127.0.0.1:")
    for name in ("http", "db", "cache"):
        assert f"Opened resource {name!r} in" in log
        assert f"Closed resource {name!r} in" in log
    assert log.index("Application startup complete") > log.index("Opened resource 'db'")
    for path in ("/visits", "/visits.csv"):
        assert f"Closed request-scoped resource 'conn' for {path} in" in log
