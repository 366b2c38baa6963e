"""Requests per second through uvicorn: the lifespan handler against vanilla Django.

Two uvicorn processes (1 worker, ``--no-access-log``, 127.0.0.1, a free port each)
serve the same async view with no middleware (``_load_app.py``): ours with
``--lifespan on``; vanilla Django's ``ASGIHandler`` with ``--lifespan off``, as it
must be (it raises on the lifespan scope, and uvicorn's ``on`` then exits). Once
both answer, a bounded load generator sends the same number of requests to each,
taking turns over a few rounds (the order alternates), from a fixed number of
keep-alive connections. Printed: requests/second per round and its median per
server, the server process's CPU time per request (from ``/proc``, Linux; steadier
than requests/second when other work shares the machine), and ours / vanilla of
each, as the median of the per-round ratios. It reports; it never fails on a
figure.

The default client is a small raw-socket HTTP/1.1 keep-alive client. Measured
against these servers: ~110 us of client CPU per request, where
``httpx.AsyncClient`` took ~1400 us, more than Django's ~1000 us in the server, so
with httpx the figures are httpx's (``--client httpx`` to see it).

    python benchmarks/load.py [--rounds 4] [--requests 1200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
URL_PATH = "/hello"
START_LIMIT = 30.0  # seconds for a server to answer its first request
RUN_LIMIT = 60.0  # seconds for one round of load against one server
STOP_LIMIT = 10.0  # seconds for a server to exit after SIGTERM (then SIGKILL)
REQUEST = f"GET {URL_PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


class LoadError(Exception):
    """A server did not start, or answered something other than 200 "hello"."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def cpu_seconds(self) -> float | None:
        """The server process's user + system CPU time, or None off Linux."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # after the command name
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(name: str, factory: str, lifespan: str, log: IO[bytes]) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", f"_load_app:{factory}",
        "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--lifespan", lifespan, "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return Server(name, process, port, log)


def stop(server: Server) -> None:
    """SIGTERM, a bounded wait, then SIGKILL: the process is gone when this returns."""
    if server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        server.process.wait(STOP_LIMIT)
    except subprocess.TimeoutExpired:
        print(f"  {server.name}: no exit {STOP_LIMIT:.0f} s after SIGTERM, killed")
        server.process.kill()
        server.process.wait(STOP_LIMIT)


@contextlib.contextmanager
def servers() -> Iterator[list[Server]]:
    """Ours and vanilla Django under uvicorn; both stopped by PID however the block ends."""
    started: list[Server] = []
    with tempfile.TemporaryFile() as ours_log, tempfile.TemporaryFile() as vanilla_log:
        try:
            started.append(start("lifespan_container handler", "ours", "on", ours_log))
            started.append(start("vanilla Django ASGIHandler", "vanilla", "off", vanilla_log))
            yield started
        finally:
            for server in started:
                stop(server)


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200 "):
        raise LoadError(f"unexpected response: {lines[0]!r}")
    fields = dict(line.lower().split(":", 1) for line in lines[1:] if ":" in line)
    if "content-length" in fields:
        body = await reader.readexactly(int(fields["content-length"]))
    else:  # Transfer-Encoding: chunked (uvicorn's choice when Django sends no length)
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # the empty trailer
    if body != b"hello":
        raise LoadError(f"unexpected body: {body!r}")


async def keep_alive(port: int, left: list[int]) -> None:
    """One connection sending requests while ``left[0]`` (shared, decremented) is positive."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while left[0] > 0:
            left[0] -= 1
            await one_request(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def raw_load(port: int, requests: int, concurrency: int) -> None:
    """``requests`` requests over ``concurrency`` keep-alive connections, raw HTTP/1.1."""
    left = [requests]
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(keep_alive(port, left))


async def httpx_load(port: int, requests: int, concurrency: int) -> None:
    """The same load through ``httpx.AsyncClient`` (one client, ``concurrency`` connections)."""
    import httpx  # noqa: PLC0415

    left = [requests]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                response = await client.get(URL_PATH)
                if response.status_code != 200 or response.content != b"hello":
                    raise LoadError(f"unexpected response: {response.status_code}")

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())


Load = Callable[[int, int, int], Awaitable[None]]
CLIENTS: dict[str, Load] = {"raw": raw_load, "httpx": httpx_load}


async def wait_until_answering(server: Server) -> None:
    deadline = time.monotonic() + START_LIMIT
    while True:
        if server.process.poll() is not None:
            raise LoadError(f"{server.name} exited:\n{server.output()}")
        try:
            async with asyncio.timeout(2):
                await keep_alive(server.port, [1])
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise LoadError(
                    f"{server.name} did not answer in {START_LIMIT:.0f} s:\n{server.output()}"
                ) from None
            await asyncio.sleep(0.1)
        else:
            return


@dataclass
class Figures:
    rps: float
    server_cpu: float | None  # s/request in the server process
    client_cpu: float  # s/request in this process


async def run(server: Server, load: Load, requests: int, concurrency: int) -> Figures:
    cpu_before, client_before = server.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    async with asyncio.timeout(RUN_LIMIT):
        await load(server.port, requests, concurrency)
    elapsed = time.perf_counter() - started
    client = (time.process_time() - client_before) / requests
    cpu_after = server.cpu_seconds()
    if cpu_before is None or cpu_after is None:
        return Figures(requests / elapsed, None, client)
    return Figures(requests / elapsed, (cpu_after - cpu_before) / requests, client)


async def main(rounds: int, requests: int, concurrency: int, client: str) -> None:
    load = CLIENTS[client]
    with servers() as (ours, vanilla):
        for server in (ours, vanilla):
            await wait_until_answering(server)
        if "Application startup complete" not in ours.output():
            raise LoadError(f"ours ran no lifespan startup:\n{ours.output()}")
        for server in (ours, vanilla):  # warm up
            await run(server, load, max(requests // 5, 1), concurrency)
        figures: dict[str, list[Figures]] = {ours.name: [], vanilla.name: []}
        print(
            f"load: uvicorn, 1 worker each, {rounds} rounds x {requests} requests per server, "
            f"{concurrency} keep-alive connections, {client} client; "
            f"Python {platform.python_version()}"
        )
        for index in range(rounds):
            for server in (ours, vanilla) if index % 2 else (vanilla, ours):
                got = await run(server, load, requests, concurrency)
                figures[server.name].append(got)
                cpu = f"{got.server_cpu * 1e6:6.0f}" if got.server_cpu is not None else "   n/a"
                print(
                    f"  round {index + 1} {server.name}: {got.rps:7.0f} requests/s, "
                    f"server CPU {cpu} us/request, client CPU {got.client_cpu * 1e6:4.0f} "
                    "us/request"
                )
    report(figures[ours.name], figures[vanilla.name])


def report(ours: list[Figures], vanilla: list[Figures]) -> None:
    for name, runs in (
        ("vanilla Django ASGIHandler", vanilla),
        ("lifespan_container handler", ours),
    ):
        cpus = [run.server_cpu for run in runs if run.server_cpu is not None]
        cpu = f", server CPU {statistics.median(cpus) * 1e6:.0f} us/request" if cpus else ""
        print(
            f"  {name}: {statistics.median(run.rps for run in runs):7.0f} requests/s (median){cpu}"
        )
    ratios = [o.rps / v.rps for o, v in zip(ours, vanilla, strict=True)]
    print(
        f"  requests/s, ours / vanilla: {statistics.median(ratios):.3f} "
        f"(per round: {', '.join(f'{ratio:.3f}' for ratio in ratios)})"
    )
    cpu_ratios = [
        o.server_cpu / v.server_cpu
        for o, v in zip(ours, vanilla, strict=True)
        if o.server_cpu is not None and v.server_cpu
    ]
    if cpu_ratios:
        print(
            f"  server CPU/request, ours / vanilla: {statistics.median(cpu_ratios):.3f} "
            f"(per round: {', '.join(f'{ratio:.3f}' for ratio in cpu_ratios)})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests, args.concurrency, args.client))
