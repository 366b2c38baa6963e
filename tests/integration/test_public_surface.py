"""The public surface: what the API reference lists is exactly what the modules export."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import lifespan_container
from lifespan_container._settings import CHECKS

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Modules Django or pytest load by name: they export nothing for users to import.
_FRAMEWORK_MODULES = {"lifespan_container.apps", "lifespan_container.urls"}


def _documented() -> dict[str, set[str]]:
    """Each module the API page documents -> the names it documents from it."""
    text = (DOCS / "reference" / "api.md").read_text()
    found: dict[str, set[str]] = {}
    for match in re.finditer(
        r"^::: (lifespan_container[\w.]*)\n((?:    .*\n)*)", text, re.MULTILINE
    ):
        path, options = match.groups()
        listed = re.search(r"members:\s*\[(.*?)\]", options)
        items = re.findall(r"^\s+- (\w+)$", options, re.MULTILINE)
        if path.count(".") == 1 and (listed or items):  # a whole module, members listed
            names = [n.strip() for n in listed.group(1).split(",")] if listed else items
            found.setdefault(path, set()).update(names)
        else:
            module, _, name = path.rpartition(".")
            found.setdefault(module, set()).add(name)
    return found


def _public_modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(lifespan_container.__path__, "lifespan_container.")
    ]
    return sorted(
        name
        for name in names
        if not any(part.startswith("_") for part in name.split("."))
        and ".engine" not in name
        and ".management" not in name
        and name not in _FRAMEWORK_MODULES
    )


@pytest.mark.parametrize("module", _public_modules())
def test_a_public_module_exports_exactly_what_the_api_page_lists(module: str) -> None:
    """Adding a public name means adding it to ``__all__`` and to the API page."""
    exported = set(importlib.import_module(module).__all__)
    assert exported == _documented().get(module, set()), module


def test_the_api_page_documents_only_public_modules() -> None:
    """Nothing private is presented as public (``_runtime`` once was)."""
    for module in _documented():
        if module == "lifespan_container":
            continue
        assert module in _public_modules(), module


def test_the_package_exports_what_the_api_page_names_first() -> None:
    """``from lifespan_container import ...`` gives the names the page leads with."""
    assert set(lifespan_container.__all__) == {
        "Provide",
        "inject",
        "get_container",
        "lifespan_state",
        "CurrentRequest",
        "RequestResource",
        "request_scope",
    }
    for name in lifespan_container.__all__:
        assert getattr(lifespan_container, name) is not None


def test_every_check_id_is_listed_once_and_documented() -> None:
    """The one list of check ids (``_settings.CHECKS``) and the settings page agree."""
    text = (DOCS / "reference" / "settings.md").read_text()
    documented = set(re.findall(r"`lifespan_container\.(E\d{3})`", text))
    assert documented == set(CHECKS)


def test_the_package_source_creates_no_check_id_outside_the_list() -> None:
    """Every ``lifespan_container.E...`` id in the source goes through ``check_id``."""
    root = Path(lifespan_container.__file__).parent
    for path in root.rglob("*.py"):
        for code in re.findall(r"check_id\(\"(E\d{3})\"\)", path.read_text()):
            assert code in CHECKS, (path, code)
        assert not re.search(r"[\"']lifespan_container\.E\d{3}[\"']", path.read_text()), path


def _imports() -> dict[str, set[str]]:
    """Each module of the package -> the modules of the package it imports, at any level.

    Imports made only for type checking (under ``if TYPE_CHECKING:``) do not count.
    """
    root = Path(lifespan_container.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = set()
        tree = ast.parse(path.read_text())
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t.startswith("lifespan_container."))
    modules = set(graph)
    return {name: {t for t in targets if t in modules} for name, targets in graph.items()}


def test_no_module_of_the_package_imports_in_a_cycle() -> None:
    """No import cycle, not even through an import inside a function."""
    graph = _imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail(f"import cycle: {' -> '.join([*path[path.index(name) :], name])}")
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_engine_imports_no_adapter() -> None:
    """Arrows point down: the engine imports only itself, the exceptions and ``_redact``."""
    allowed = {"lifespan_container.exceptions", "lifespan_container._redact"}
    for name, targets in _imports().items():
        if name.startswith("lifespan_container.engine"):
            outside = {t for t in targets if not t.startswith("lifespan_container.engine")}
            assert outside <= allowed, (name, outside - allowed)


def test_no_module_of_the_package_is_over_about_400_lines() -> None:
    """Small modules: one concept each."""
    root = Path(lifespan_container.__file__).parent
    sizes = {path.name: len(path.read_text().splitlines()) for path in root.rglob("*.py")}
    assert max(sizes.values()) <= 420, sorted(sizes.items(), key=lambda item: -item[1])[:3]
