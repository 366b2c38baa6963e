"""The tutorial, followed to the letter: its files, its server, its test."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.process import ROOT, serve

pytestmark = pytest.mark.server

PAGE = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
BLOCK = re.compile(
    r"^```(?:python|ini)\n# (file|append): (\S+)\n(.*?)^```", re.DOTALL | re.MULTILINE
)
LIMIT = 120  # bounds the harness (a subprocess that hangs), not the behaviour


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`django-admin startproject mysite`, then every file and addition of the page."""
    home = tmp_path / "tutorial"
    home.mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(home)],
        check=True,
        timeout=LIMIT,
    )
    blocks = BLOCK.findall(PAGE)
    assert len(blocks) >= 6
    for kind, name, source in blocks:
        path = home / name
        if kind == "append":
            path.write_text(path.read_text(encoding="utf-8") + "\n" + source, encoding="utf-8")
        else:
            path.write_text(source, encoding="utf-8")
    return home


def run(project: Path, *argv: str, settings: bool = True) -> subprocess.CompletedProcess[str]:
    """Run Python in the project; ``settings=False`` leaves DJANGO_SETTINGS_MODULE unset."""
    env = _env()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    return subprocess.run(
        [sys.executable, *argv],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )


def _env() -> dict[str, str]:
    import os  # noqa: PLC0415

    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}


def test_the_tutorial_project_is_served_with_its_resource(project: Path, tmp_path: Path) -> None:
    """uvicorn serves the injected view; the log shows the client opening and closing."""
    check = run(project, "manage.py", "check")
    assert check.returncode == 0, check.stderr
    argv = [sys.executable, "-m", "uvicorn", "mysite.asgi:application", "--lifespan", "on"]
    argv += ["--host", "127.0.0.1", "--port", "{port}"]
    env = {
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "WEATHER_API_URL": "http://127.0.0.1:{port}/fake-api",
        "PYTHONPATH": str(project),
    }
    with serve(argv, env, tmp_path) as server:
        response = server.wait_until_serving("/forecast/oslo")
        assert response.json() == {"city": "oslo", "temperature_c": 4}
        server.signal(signal.SIGTERM)
        assert server.wait() == -signal.SIGTERM
        log = server.stderr
    assert "Opened resource 'weather_api' in" in log
    assert "Closed resource 'weather_api' in" in log


def test_the_tutorial_test_passes(project: Path) -> None:
    """`pytest`, configured by the page's pytest.ini alone: no environment, no options.

    ``-P`` keeps the project directory off ``sys.path``, as the ``pytest`` command
    does; ``-W error`` makes a warning (a missing pytest-asyncio setting) fail it.
    """
    result = run(
        project, "-P", "-W", "error", "-m", "pytest", "-p", "no:cacheprovider", settings=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "warning" not in result.stdout.lower(), result.stdout


def test_check_reports_a_misspelt_marker(project: Path) -> None:
    """The page's suggestion: `Provide["weather"]` makes `manage.py check` fail."""
    views = project / "mysite" / "views.py"
    views.write_text(
        views.read_text(encoding="utf-8").replace(
            "Provide[Container.weather_api]", 'Provide["weather"]'
        ),
        encoding="utf-8",
    )
    check = run(project, "manage.py", "check")
    assert check.returncode != 0
    assert "lifespan_container.E101" in check.stderr
    assert "Provide['weather'] on parameter 'api' of mysite.views.forecast" in check.stderr
