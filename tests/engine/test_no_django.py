"""The engine imports no Django, and none of the package's Django layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lifespan_container.engine

SERVER_WORDS = ("runserver", "runasgi", "daphne", "uvicorn", "asyncclient")

PROBE = """
import pkgutil, sys
import lifespan_container.engine as engine

names = [f"{engine.__name__}.{m.name}" for m in pkgutil.iter_modules(engine.__path__)]
assert len(names) >= 10, names
for name in names:
    __import__(name)
django = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
allowed = ("lifespan_container", "lifespan_container.exceptions", "lifespan_container._redact")
layer = sorted(
    m for m in sys.modules
    if m.startswith("lifespan_container.")
    and m != "lifespan_container.engine"
    and not m.startswith("lifespan_container.engine.")
    and m not in allowed
)
assert not django, django
assert not layer, layer
print(len(names), "modules:", " ".join(sorted(names)))
"""


def test_importing_every_engine_module_imports_no_django() -> None:
    """In a fresh interpreter, every lifespan_container.engine module imports cleanly and
    leaves no ``django`` module and no Django-layer module of the package in sys.modules."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "lifespan_container.engine.lifecycle" in result.stdout
    assert "lifespan_container.engine.protocol" in result.stdout


def test_no_string_of_the_engine_names_a_server_or_a_test_client() -> None:
    """What to do about a server or a test client is the Django layer's advice, not the engine's.

    Every string literal of the engine's code (docstrings aside) is checked; the one
    exception is the name of httpx's ``AsyncClient`` type, looked up for its default check.
    """
    found: list[str] = []
    modules = sorted(Path(lifespan_container.engine.__file__).parent.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        found += [
            f"{path.name}:{node.lineno}: {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and node.value != "AsyncClient"
            and any(word in node.value.lower() for word in SERVER_WORDS)
        ]
    assert found == []
