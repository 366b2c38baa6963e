"""Append-only event log shared by the server's processes and read by the tests."""

from __future__ import annotations

import os
from pathlib import Path


def record(event: str) -> None:
    path = os.environ.get("LC_EVENTS")
    if path:
        with Path(path).open("a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {event}\n")


def read(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(int(pid), event) for pid, event in (line.split(" ", 1) for line in lines)]
