"""Start a real ASGI server as a process on 127.0.0.1, and always stop it by its PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Bounds for the test harness itself (how long a server may take to come up or exit);
# never an expectation about speed.
START_WITHIN = 30.0
EXIT_WITHIN = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One server process with its output captured in files."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [arg.replace("{port}", str(self.port)) for arg in argv]
        env = {key: value.replace("{port}", str(self.port)) for key, value in env.items()}
        self._stdout = (workdir / "stdout.log").open("wb")
        self._stderr_path = workdir / "stderr.log"
        self._stderr = self._stderr_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=self._stdout,
            stderr=self._stderr,
            # Its own process group: close() can stop the workers a killed parent leaves.
            start_new_session=True,
        )

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_until_serving(self, path: str, within: float = START_WITHIN) -> httpx.Response:
        """Poll ``path`` until the server answers (bounded), and return the response."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"server exited with {self.process.returncode}:\n{self.stderr}"
                raise AssertionError(msg)
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(self.url + path, timeout=5)
            time.sleep(0.05)
        msg = f"server did not answer within {within} s:\n{self.stderr}"
        raise AssertionError(msg)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Poll ``condition`` until it holds (bounded); fail naming ``what`` if it never does."""
        deadline = time.monotonic() + START_WITHIN
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                msg = f"server exited with {self.process.returncode} before {what}:\n{self.stderr}"
                raise AssertionError(msg)
            time.sleep(0.02)
        msg = f"no {what} within {START_WITHIN} s:\n{self.stderr}"
        raise AssertionError(msg)

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def wait(self) -> int:
        """Wait for the process to exit (bounded) and return its exit code."""
        try:
            return self.process.wait(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            msg = f"server did not exit within {EXIT_WITHIN} s:\n{self.stderr}"
            raise AssertionError(msg) from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXIT_WITHIN)
        # Workers of a server killed above (or of one that exited without them) would
        # be orphans: stop whatever is left of its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._stdout.close()
        self._stderr.close()


@contextlib.contextmanager
def serve(argv: Sequence[str], env: dict[str, str], workdir: Path) -> Iterator[Server]:
    server = Server(argv, env, workdir)
    try:
        yield server
    finally:
        server.close()


def project_env(events: Path, **extra: str) -> dict[str, str]:
    """The served test project's environment, recording its events in ``events``."""
    return {"DJANGO_SETTINGS_MODULE": "tests.project.settings", "LC_EVENTS": str(events), **extra}


def uvicorn(*extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.project.asgi:application",
        "--lifespan",
        "on",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--no-access-log",
        *extra,
    ]


SIGTERM = signal.SIGTERM


APP = "tests.project.asgi:application"


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def gunicorn(*args: str) -> list[str]:
    # gunicorn 27 opens a control socket under ~/.gunicorn unless told not to.
    return python_module("gunicorn", APP, "-b", "127.0.0.1:{port}", "--no-control-socket", *args)


def gunicorn_workers(worker: str) -> list[str]:
    """gunicorn with two processes of ``worker`` and a 10 s graceful timeout."""
    return python_module(
        "gunicorn",
        APP,
        "-k",
        worker,
        "-w",
        "2",
        "-b",
        "127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
    )


SERVERS: dict[str, tuple[list[str], int]] = {
    # name: (command line, worker processes that each run a lifespan)
    "uvicorn": (uvicorn(), 1),
    "uvicorn-workers-2": (uvicorn("--workers", "2"), 2),
    "gunicorn-uvicorn-worker": (
        gunicorn_workers("uvicorn_worker.UvicornWorker"),
        2,
    ),
    "gunicorn-library-worker": (
        gunicorn_workers("lifespan_container.workers.UvicornWorker"),
        2,
    ),
    "gunicorn-asgi": (
        gunicorn("-k", "asgi"),
        1,
    ),
    "hypercorn": (python_module("hypercorn", APP, "--bind", "127.0.0.1:{port}"), 1),
    "hypercorn-workers-0": (
        python_module("hypercorn", APP, "--workers", "0", "--bind", "127.0.0.1:{port}"),
        1,
    ),
    "hypercorn-workers-2": (
        python_module("hypercorn", APP, "--workers", "2", "--bind", "127.0.0.1:{port}"),
        2,
    ),
    "granian-workers-2": (
        python_module(
            "granian",
            "--interface",
            "asgi",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            APP,
        ),
        2,
    ),
}
DAPHNE = python_module("daphne", "-b", "127.0.0.1", "-p", "{port}", APP)
