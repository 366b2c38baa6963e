"""Every ASGI server users run, as real processes: one lifespan per worker, in order.

Each case starts the server on 127.0.0.1 on a free port, stops it by its PID and
reads the events the test project's resources and receivers append to a file,
each line prefixed by the worker's PID.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.project.events import read
from tests.servers.process import DAPHNE, ROOT, SERVERS, Server, gunicorn, serve
from tests.servers.process import project_env as env

pytestmark = pytest.mark.server

WITHIN = 30.0  # bounds the harness's waits, never an expectation of speed


@dataclass(frozen=True)
class Facts:
    """What a server does, as these tests measure it (docs/explanation/servers.md)."""

    exit_on_sigterm: int
    exit_after_failed_startup: str
    """An exit code, or "non-zero" where the server's code races (gunicorn: 1 or 3)."""
    completes_requests_in_flight: bool
    every_worker_rolls_back: bool = True
    """False where the server kills the other workers once one failed its startup."""
    every_worker_shuts_down: bool = True
    """False where the server terminates the other workers once one has exited."""

    def failed_startup_exit_matches(self, code: int) -> bool:
        if self.exit_after_failed_startup == "non-zero":
            return code != 0
        return code == int(self.exit_after_failed_startup)


MATRIX = {
    "uvicorn": Facts(
        exit_on_sigterm=-signal.SIGTERM,
        exit_after_failed_startup="3",
        completes_requests_in_flight=True,
    ),  # re-raises SIGTERM after a clean shutdown
    "uvicorn-workers-2": Facts(
        exit_on_sigterm=0, exit_after_failed_startup="0", completes_requests_in_flight=True
    ),
    "gunicorn-uvicorn-worker": Facts(
        exit_on_sigterm=0, exit_after_failed_startup="non-zero", completes_requests_in_flight=True
    ),
    "gunicorn-library-worker": Facts(
        exit_on_sigterm=0, exit_after_failed_startup="non-zero", completes_requests_in_flight=True
    ),
    "gunicorn-asgi": Facts(
        exit_on_sigterm=0, exit_after_failed_startup="non-zero", completes_requests_in_flight=True
    ),
    "hypercorn": Facts(
        exit_on_sigterm=0, exit_after_failed_startup="0", completes_requests_in_flight=True
    ),
    "hypercorn-workers-0": Facts(  # serves in the main process: a failed startup exits 1
        exit_on_sigterm=0, exit_after_failed_startup="1", completes_requests_in_flight=True
    ),
    "hypercorn-workers-2": Facts(
        exit_on_sigterm=0,
        exit_after_failed_startup="0",
        completes_requests_in_flight=False,
        every_worker_rolls_back=False,
        every_worker_shuts_down=False,
    ),  # the supervisor kills a worker still draining, or still shutting down
    "granian-workers-2": Facts(
        exit_on_sigterm=0, exit_after_failed_startup="non-zero", completes_requests_in_flight=True
    ),
}


def by_worker(events: Path) -> dict[int, list[str]]:
    workers: dict[int, list[str]] = defaultdict(list)
    for pid, event in read(events):
        workers[pid].append(event)
    return dict(workers)


def wait_for_workers(server: Server, events: Path, count: int) -> None:
    """Until `count` workers completed their startup (bounded)."""
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        started = [e for e in by_worker(events).values() if "startup receiver" in e]
        if len(started) >= count:
            return
        assert server.process.poll() is None, server.stderr
        time.sleep(0.05)
    raise AssertionError(f"{count} workers did not start within {WITHIN} s:\n{server.stderr}")


@pytest.mark.parametrize("name", SERVERS)
def test_each_worker_runs_startup_and_shutdown_once(name: str, tmp_path: Path) -> None:
    """Startup before the first request, shutdown on SIGTERM, once per worker."""
    argv, workers = SERVERS[name]
    events = tmp_path / "events.log"
    with serve(argv, env(events), tmp_path) as server:
        wait_for_workers(server, events, workers)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(4 * workers):
                assert client.get("/resources").status_code == 200
        server.signal(signal.SIGTERM)
        assert server.wait() == MATRIX[name].exit_on_sigterm
    log = by_worker(events)
    assert len(log) == workers, log
    shut_down = [
        worker
        for worker in log.values()
        if sorted(worker[-2:]) == ["close cache", "close http"]
        and worker[-3] == "shutdown receiver"
    ]
    for pid, worker_events in log.items():
        assert worker_events.count("startup receiver") == 1, (pid, worker_events)
        assert worker_events.count("shutdown receiver") <= 1, (pid, worker_events)
        assert sorted(worker_events[:2]) == ["open cache", "open http"], worker_events
    if MATRIX[name].every_worker_shuts_down:
        assert len(shut_down) == workers, log
    else:
        # hypercorn terminates the other workers as soon as the first one exits, so
        # only that one is sure to finish its shutdown (docs/explanation/servers.md).
        assert shut_down, log


@pytest.mark.parametrize("name", SERVERS)
def test_a_request_in_flight_completes_before_the_resources_close(
    name: str, tmp_path: Path
) -> None:
    """SIGTERM during a request: it completes, then the shutdown closes the resources.

    Except under hypercorn with several workers: its supervisor terminates every
    worker as soon as the first one exits, cutting off a worker that still drains
    (its request, and its lifespan shutdown).
    """
    argv, workers = SERVERS[name]
    events = tmp_path / "events.log"
    answers: list[httpx.Response | Exception] = []
    with serve(argv, env(events), tmp_path) as server:
        wait_for_workers(server, events, workers)

        def slow_request() -> None:
            with httpx.Client(base_url=server.url, timeout=WITHIN) as client:
                try:
                    answers.append(client.get("/slow", params={"seconds": "1"}))
                except httpx.TransportError as exc:
                    answers.append(exc)

        requesting = threading.Thread(target=slow_request)
        requesting.start()
        deadline = time.monotonic() + WITHIN
        while not any("slow begin" in e for e in by_worker(events).values()):
            assert time.monotonic() < deadline, server.stderr
            time.sleep(0.02)
        server.signal(signal.SIGTERM)
        requesting.join(WITHIN)
        server.wait()
    [worker_events] = [e for e in by_worker(events).values() if "slow begin" in e]
    [answer] = answers
    if MATRIX[name].completes_requests_in_flight:
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200
        assert worker_events.index("slow end") < worker_events.index("close http"), worker_events
    else:
        assert isinstance(answer, httpx.RemoteProtocolError), answer
        assert "slow end" not in worker_events
        assert "close http" not in worker_events  # that worker's shutdown was cut off too


@pytest.mark.parametrize("name", SERVERS)
def test_a_failing_resource_stops_the_server(name: str, tmp_path: Path) -> None:
    """The failure is in the log by name; opened siblings close; the process ends."""
    argv, _ = SERVERS[name]
    events = tmp_path / "events.log"
    failing = env(events, LC_CONTAINER="tests.project.containers.FailingContainer")
    with serve(argv, failing, tmp_path) as server:
        code = server.wait()
        stderr = server.stderr
    assert "Startup failed: resource 'db_pool' raised ConnectionRefusedError" in stderr
    workers = by_worker(events)
    assert workers, "no worker recorded anything"
    rolled_back = [
        events_of_one
        for events_of_one in workers.values()
        if sorted(e for e in events_of_one if e.startswith("close"))
        == ["close cache", "close http"]
    ]
    if MATRIX[name].every_worker_rolls_back:
        assert len(rolled_back) == len(workers), workers
    else:  # the worker that failed first rolled back; the server killed the others
        assert rolled_back, workers
    assert not [e for e in workers.values() if "startup receiver" in e], workers
    # uvicorn's and hypercorn's multi-process supervisors, and hypercorn, exit 0.
    assert MATRIX[name].failed_startup_exit_matches(code), code


def test_the_matrix_covers_every_server() -> None:
    assert set(MATRIX) == set(SERVERS)


def test_the_docs_table_is_this_suites_results() -> None:
    """docs/explanation/servers.md shows what these tests assert, row by row."""
    page = (ROOT / "docs" / "explanation" / "servers.md").read_text()
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0].strip("`") in MATRIX:
            rows[cells[0].strip("`")] = cells[2:]
    assert set(rows) == set(MATRIX)
    for name, facts in MATRIX.items():
        sigterm, failed, in_flight = rows[name]
        assert sigterm == str(facts.exit_on_sigterm), name
        assert failed == facts.exit_after_failed_startup, name
        assert in_flight == ("yes" if facts.completes_requests_in_flight else "no"), name


@pytest.mark.parametrize(
    ("worker", "closes"),
    [("uvicorn_worker.UvicornWorker", False), ("lifespan_container.workers.UvicornWorker", True)],
    ids=["stock-worker", "library-worker"],
)
def test_gunicorn_quick_shutdown(worker: str, closes: bool, tmp_path: Path) -> None:
    """SIGQUIT to the master: only the library's worker runs the lifespan shutdown."""
    events = tmp_path / "events.log"
    argv = gunicorn("-k", worker, "-w", "2", "--graceful-timeout", "3")
    with serve(argv, env(events), tmp_path) as server:
        wait_for_workers(server, events, 2)
        server.signal(signal.SIGQUIT)
        server.wait()
    log = by_worker(events)
    assert len(log) == 2
    for worker_events in log.values():
        if closes:
            assert worker_events[-3] == "shutdown receiver", worker_events
            assert sorted(worker_events[-2:]) == ["close cache", "close http"], worker_events
        else:  # killed after --graceful-timeout, resources never closed
            assert "shutdown receiver" not in worker_events, worker_events
            assert not [e for e in worker_events if e.startswith("close")], worker_events


def test_daphne_serves_but_resources_raise_a_clear_error(tmp_path: Path) -> None:
    """daphne sends no lifespan: nothing opens, and using a resource says what to do."""
    events = tmp_path / "events.log"
    with serve(DAPHNE, env(events), tmp_path) as server:
        response = server.wait_until_serving("/resources")
        server.signal(signal.SIGTERM)
        server.wait()
        stderr = server.stderr
    assert response.status_code == 500
    assert "ResourcesNotStartedError: Resource 'http' is not open" in stderr
    assert "daphne and WSGI runserver send none" in stderr
    assert "the ASGI lifespan never started" in stderr  # a WARNING naming the causes
    assert [event for _, event in read(events)] == ["request"]
