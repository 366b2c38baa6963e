"""The drop-in suite (``tests/dal_suite``) passes, in its order and in reverse.

It runs in a subprocess: it needs the drop-in project's settings
(``tests.dal_project.settings``), and this process has the main suite's. It starts
a uvicorn server (in a thread of that subprocess), hence the ``server`` mark.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers.process import ROOT

pytestmark = pytest.mark.server

# How many tests the drop-in suite has: a collection that lost some fails here.
DAL_TESTS = 16
# A bound for the harness (the suite takes seconds), never an expectation.
WITHIN = 300


def run_dal_suite(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.dal_project.settings",
        "PYTHONDEVMODE": "1",
    }
    env.pop("PYTEST_ADDOPTS", None)
    argv = [sys.executable, "-m", "pytest", "tests/dal_suite", "-p", "no:cacheprovider", "-q"]
    argv += ["-W", "error::ResourceWarning", *args]
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=WITHIN, check=False
    )


def collected(*args: str) -> list[str]:
    result = run_dal_suite("--collect-only", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_reverse_option_reverses_the_order() -> None:
    forward = collected()
    assert len(forward) == DAL_TESTS
    assert collected("--dal-reverse") == forward[::-1]


@pytest.mark.parametrize("order", [[], ["--dal-reverse"]], ids=["forward", "reverse"])
def test_the_drop_in_suite_passes(order: list[str]) -> None:
    result = run_dal_suite(*order)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{DAL_TESTS} passed in "), output
