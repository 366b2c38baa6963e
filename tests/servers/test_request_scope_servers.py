"""Request-scoped connections under real ASGI servers: closed after the last chunk, or
when the client goes away mid-stream.

Each server runs tests/request_scope_project as a process on 127.0.0.1 (one worker,
so that one pool answers), stopped by its PID. The request's connection comes from
a real ``AsyncConnectionPool``; ``checkout`` writes what happened to it to an events
file the test reads: opened, what was thrown in at the close, the pool once it had
the connection back. The stream waits after its first chunk for a PostgreSQL
advisory lock the test holds (the gate), so what the test sees in between is
deterministic: no sleeps decide anything.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.project.events import read
from tests.request_scope_project.containers import POOL_SIZE
from tests.request_scope_project.urls import CHUNK_ROWS
from tests.servers.process import Server, python_module, serve
from tests.services.postgres import backends

pytestmark = [pytest.mark.server, pytest.mark.services]

WITHIN = 30.0  # bounds the harness's waits, never an expectation of speed
APP = "tests.request_scope_project.asgi:application"
ROWS = 10

COMMANDS: dict[str, list[str]] = {
    "uvicorn": python_module(
        "uvicorn",
        APP,
        "--lifespan",
        "on",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--no-access-log",
    ),
    "gunicorn-library-worker": python_module(
        "gunicorn",
        APP,
        "-k",
        "lifespan_container.workers.UvicornWorker",
        "-w",
        "1",
        "-b",
        "127.0.0.1:{port}",
        "--no-control-socket",
    ),
    "hypercorn": python_module("hypercorn", APP, "--bind", "127.0.0.1:{port}"),
    "granian": python_module(
        "granian",
        "--interface",
        "asgi",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        APP,
    ),
}
# All four together take about 10 s (a server start each): none is marked slow.
SERVERS = list(COMMANDS)


@dataclass(frozen=True)
class Running:
    """A server of the project, the events file it writes and its pool's tag."""

    server: Server
    events: Path
    dsn: str
    app_name: str

    def events_of(self, marker: str) -> list[str]:
        """The events of the request named ``marker``, in order, without the marker."""
        found = []
        for _, event in read(self.events):
            what, _, rest = event.partition(" ")
            name, _, detail = rest.partition(" ")
            if name == marker:
                found.append(f"{what} {detail}".strip())
        return found

    def wait_for_event(self, marker: str, prefix: str) -> list[str]:
        self.server.wait_for(
            lambda: any(e.startswith(prefix) for e in self.events_of(marker)),
            f"{prefix!r} for request {marker}",
        )
        return self.events_of(marker)


@pytest.fixture(scope="module", params=SERVERS)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str
) -> Iterator[Running]:
    """One server for both tests of the module; its pool's backends gone after it."""
    name: str = request.param
    workdir = tmp_path_factory.mktemp(name)
    events = workdir / "events.log"
    app_name = f"lc-rs-srv-{uuid.uuid4().hex[:8]}"
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.request_scope_project.settings",
        "LC_RS_DSN": postgres_dsn,
        "LC_RS_APP_NAME": app_name,
        "LC_EVENTS": str(events),
    }
    with serve(COMMANDS[name], env, workdir) as server:
        assert server.wait_until_serving("/pool").status_code == 200, server.stderr
        yield Running(server, events, postgres_dsn, app_name)
        server.signal(signal.SIGTERM)
        server.wait()
        stderr = server.stderr
    # Nothing failed, timed out or was logged as an error on the way (a close that
    # raised, a cleanup given up on); the pool closed at shutdown.
    assert "ERROR" not in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert settle(postgres_dsn, app_name, 0) == 0


def settle(dsn: str, name: str, expected: int) -> int:
    """Poll until PostgreSQL sees ``expected`` backends of the pool (it notices a
    close a moment after the client); bounded."""
    deadline = time.monotonic() + 10
    while (seen := backends(dsn, name)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


class Gate:
    """A PostgreSQL advisory lock the test holds; the stream waits for it."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self.key = uuid.uuid4().int >> 66  # fits a bigint
        self.held = False

    def close(self) -> None:
        self.conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        self.held = True

    def open(self) -> None:
        if self.held:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self.held = False


@contextlib.contextmanager
def gate(dsn: str) -> Iterator[Gate]:
    """A closed gate, opened at the latest on exit."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        held = Gate(conn)
        held.close()
        try:
            yield held
        finally:
            held.open()


def pool_states(dsn: str, name: str) -> list[str]:
    """The state of each of the pool's backends (``idle``, ``active``, ...)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return sorted(str(state) for (state,) in rows)


def expected_body(rows: int) -> bytes:
    return "".join(f"{n}," for n in range(1, rows + 1)).encode()


FIRST_CHUNK = expected_body(CHUNK_ROWS)
OUT = f"available={POOL_SIZE - 1}"
BACK = f"available={POOL_SIZE}"


def test_a_stream_read_to_its_end_returns_the_connection_after_the_last_chunk(
    running: Running,
) -> None:
    """While the stream waits after its first chunk, the connection is out and open;
    the client reads the rest; then ``checkout`` exits normally (no exception) and
    the pool has the connection back."""
    marker = f"full-{uuid.uuid4().hex[:8]}"
    chunks = -(-ROWS // CHUNK_ROWS)
    with (
        gate(running.dsn) as held,
        httpx.Client(base_url=running.server.url, timeout=WITHIN) as client,
        client.stream(
            "GET", "/stream", params={"n": marker, "rows": ROWS, "gate": held.key}
        ) as response,
    ):
        assert response.status_code == 200
        pieces = response.iter_raw()
        received = b""
        while len(received) < len(FIRST_CHUNK):
            received += next(pieces)
        assert received == FIRST_CHUNK
        at_gate = running.wait_for_event(marker, "gate")
        assert at_gate == [f"open {OUT}", f"chunk {OUT}", "gate"], at_gate
        held.open()
        received += b"".join(pieces)
    assert received == expected_body(ROWS)
    done = running.wait_for_event(marker, "returned")
    assert done == [
        f"open {OUT}",
        f"chunk {OUT}",
        "gate",
        *[f"chunk {OUT}"] * (chunks - 1),
        "stream-end",
        "close ok",
        f"returned {BACK}",
    ], done
    assert pool_states(running.dsn, running.app_name) == ["idle"] * POOL_SIZE


def test_a_client_that_closes_mid_stream_gets_the_abort_thrown_in_and_the_connection_back(
    running: Running,
) -> None:
    """The client closes its socket while the stream waits (in PostgreSQL) after its
    first chunk: the server notices, the stream is cancelled, ``RequestAborted`` is
    thrown into ``checkout`` (its transaction rolls back), the pool has the connection
    back, and no backend still waits for the lock or sits in a transaction."""
    marker = f"gone-{uuid.uuid4().hex[:8]}"
    host, port = "127.0.0.1", running.server.port
    with gate(running.dsn) as held:
        with socket.create_connection((host, port), timeout=WITHIN) as client:
            query = f"n={marker}&rows={ROWS}&gate={held.key}"
            client.sendall(f"GET /stream?{query} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            received = b""
            while FIRST_CHUNK not in received:
                data = client.recv(4096)
                assert data, received
                received += data
            at_gate = running.wait_for_event(marker, "gate")
            assert at_gate == [f"open {OUT}", f"chunk {OUT}", "gate"], at_gate
        # The socket is closed; the gate stays closed: only the disconnect ends the wait.
        done = running.wait_for_event(marker, "returned")
        states = pool_states(running.dsn, running.app_name)
    assert done == [
        f"open {OUT}",
        f"chunk {OUT}",
        "gate",
        "stream-saw CancelledError",
        "close RequestAborted",
        f"returned {BACK}",
    ], done
    assert states == ["idle"] * POOL_SIZE
