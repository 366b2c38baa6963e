"""Serve the demo under uvicorn, lifespan on, on 127.0.0.1, and print the URLs to open.

    python3 tools/dev.py demo      # from the repository root: sets up and runs this

Port 8000 unless it is taken (then a free one) or DEMO_PORT says otherwise. Stop
with Ctrl+C: the log shows every resource closing.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATHS = (
    "/",
    "/weather/Oslo",
    "/stations/",
    "/report",
    "/api/stations/OSL",
    "/visits",
    "/visits.csv",
)
TRIP = '{"visitor": "Ada", "stations": ["OSL", "TOS"]}'


def pick_port() -> int:
    if os.environ.get("DEMO_PORT"):
        return int(os.environ["DEMO_PORT"])
    for port in (8000, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise SystemExit("no free port on 127.0.0.1")  # pragma: no cover


def main() -> None:
    port = pick_port()
    os.environ["DEMO_PORT"] = str(port)
    os.environ["DJANGO_SETTINGS_MODULE"] = "weather.settings"
    database = os.environ.get("DATABASE_URL", "SQLite (weather.sqlite3 in demo/)")
    cache = os.environ.get("REDIS_URL", "none (set REDIS_URL to cache forecasts)")
    base = f"http://127.0.0.1:{port}"
    print(f"Weather demo on {base}  (database: {database}; cache: {cache})")
    for path in PATHS:
        print(f"  {base}{path}")
    print(f"  curl -d '{TRIP}' {base}/visits   # a trip, recorded in one transaction")
    print("Press Ctrl+C to stop: every resource closes, as the log shows.", flush=True)
    os.chdir(HERE)
    argv = [sys.executable, "-m", "uvicorn", "weather.asgi:application", "--lifespan", "on"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    os.execv(sys.executable, argv)  # noqa: S606 (uvicorn takes over this process: Ctrl+C reaches it)


if __name__ == "__main__":
    main()
