"""The code in the docs and the README is valid Python (the docs issue runs it too)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_there_are_pages_with_examples() -> None:
    assert len([page for page in PAGES if BLOCK.search(page.read_text())]) >= 4


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_python_examples_compile(page: Path) -> None:
    for number, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
        compile(match.group(1), f"{page.name} example {number}", "exec")
