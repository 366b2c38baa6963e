"""The migrating page's diff for django-asgi-lifespan users changes only what it says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIFF = re.compile(r"^```diff\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _diff() -> str:
    page = (ROOT / "docs" / "how-to" / "migrating.md").read_text(encoding="utf-8")
    [diff] = DIFF.findall(page)
    return str(diff)


def test_the_diff_only_renames_the_package_and_adds_the_two_settings() -> None:
    """Every removed line comes back with the package renamed; the only other added lines
    are the app in ``INSTALLED_APPS`` and ``LIFESPAN_CONTAINER`` (and a blank line)."""
    lines = [line for line in _diff().splitlines() if not line.startswith(("---", "+++", "@@"))]
    removed = [line[1:] for line in lines if line.startswith("-")]
    added = [line[1:] for line in lines if line.startswith("+")]
    renamed = [line.replace("django_asgi_lifespan", "lifespan_container") for line in removed]
    assert all("django_asgi_lifespan" in line for line in removed)
    extra = [line for line in added if line not in renamed]
    assert extra == ['    "lifespan_container",', "", 'LIFESPAN_CONTAINER = {"CONTAINER": None}']
    assert sorted(line for line in added if line in renamed) == sorted(renamed)


def test_the_diff_hunks_count_their_lines() -> None:
    """Each hunk header matches its lines, so that ``git apply`` takes the diff as written."""
    hunks = re.split(r"^(@@ -\d+,(\d+) \+\d+,(\d+) @@)\n", _diff(), flags=re.MULTILINE)
    for _, old, new, body in zip(hunks[1::4], hunks[2::4], hunks[3::4], hunks[4::4], strict=True):
        lines = [line for line in body.splitlines() if not line.startswith(("---", "+++"))]
        assert sum(not line.startswith("+") for line in lines) == int(old)
        assert sum(not line.startswith("-") for line in lines) == int(new)
