#!/usr/bin/env python3
"""The project's two commands, on a machine that has only Python 3.11+.

    python3 tools/dev.py test   # lint, typing, docs, the suite and Django's own ASGI
                                # tests (django_suites) on the oldest and newest pair,
                                # and the sdist installed and tested (package)
    python3 tools/dev.py demo   # serve the demo project on 127.0.0.1

The first run creates ``.venv-dev`` with nox and uv; each nox session creates its
own environment. Any other arguments go to nox: ``python3 tools/dev.py -s lint``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_VENV = ROOT / ".venv-dev"
BIN = TOOLS_VENV / ("Scripts" if os.name == "nt" else "bin")
REQUIREMENTS = ["nox[uv]==2026.10.20", "uv==0.13.9"]
STAMP = TOOLS_VENV / "requirements.txt"
NEEDED = ("3.11", "3.13")  # the oldest and the newest supported interpreter


def ensure_tools() -> None:
    wanted = "\n".join(REQUIREMENTS)
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "nox").exists():
        return
    print(f"Setting up {TOOLS_VENV.name} with {', '.join(REQUIREMENTS)} ...", flush=True)
    venv.create(TOOLS_VENV, with_pip=True, clear=True)
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True
    )
    STAMP.write_text(wanted)


def interpreter_dirs() -> list[str]:
    """Directories holding pythonX.Y executables that PATH alone does not give."""
    found: list[str] = []
    pyenv = shutil.which("pyenv")
    root = os.environ.get("PYENV_ROOT") or (
        subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        if pyenv
        else ""
    )
    if root:
        found += [str(path) for path in sorted(Path(root, "versions").glob("3.*/bin"))]
    return found


def has_interpreter(version: str, path: str) -> bool:
    exe = shutil.which(f"python{version}", path=path)
    if exe is None:
        return False
    probe = subprocess.run([exe, "--version"], capture_output=True, check=False)
    return probe.returncode == 0


def main(argv: list[str]) -> int:
    ensure_tools()
    path = os.pathsep.join([str(BIN), *interpreter_dirs(), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("PYENV_VERSION", None)
    for version in NEEDED:
        if not has_interpreter(version, path):
            print(
                f"NOTICE: Python {version} is not installed on this machine; "
                "its test session will be skipped.",
                flush=True,
            )
    command, *rest = argv or ["test"]
    if command == "test":
        nox_args = ["-s", "lint", "typing", "docs", "tests", "django_suites", "package", *rest]
    elif command == "demo":
        nox_args = ["-s", "demo", *rest]
    else:
        nox_args = [command, *rest]
    nox = [str(BIN / "nox"), "--no-error-on-missing-interpreters", "-f", str(ROOT / "noxfile.py")]
    return subprocess.run([*nox, *nox_args], env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
