"""The package's version, metadata and release workflow.

The workflow checks read the YAML as text (the suite does not depend on a YAML
parser); the workflows are block-style YAML, which keeps that reliable.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

import lifespan_container

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def test_the_installed_version_is_the_package_version() -> None:
    installed = importlib.metadata.version("django-lifespan-container")
    assert installed == lifespan_container.__version__


def test_the_version_is_written_once_in_normal_form() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "lifespan_container/__init__.py"
    # The release workflow finds the sdist by the tag: `v` + this exact string.
    assert str(Version(lifespan_container.__version__)) == lifespan_container.__version__


def _lines(path: Path) -> list[str]:
    """The file's non-blank lines, comments removed (`#` after a space or at the start)."""
    lines = (re.sub(r"(^|\s)#.*$", "", line).rstrip() for line in path.read_text().splitlines())
    return [line for line in lines if line.strip()]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], key: str, indent: int = 0) -> list[str]:
    """The line ``key:`` at `indent` and the lines nested under it."""
    starts = [
        i
        for i, line in enumerate(lines)
        if _indent(line) == indent and line.strip().split(":", 1)[0] == key
    ]
    assert len(starts) == 1, f"{key!r} appears {len(starts)} times at indent {indent}"
    start = starts[0]
    end = start + 1
    while end < len(lines) and _indent(lines[end]) > indent:
        end += 1
    return lines[start:end]


def _jobs(lines: list[str]) -> dict[str, list[str]]:
    jobs = _block(lines, "jobs")
    names = [line.strip().removesuffix(":") for line in jobs[1:] if _indent(line) == 2]
    return {name: _block(jobs, name, 2) for name in names}


def _uses(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines if (m := re.search(r"\buses:\s*(\S+)", line))]


def test_the_release_runs_on_version_tags_only() -> None:
    trigger = [line.strip() for line in _block(_lines(RELEASE), "on")]
    assert trigger[1] == "push:"
    assert re.fullmatch(r"""tags:\s*\[\s*["']v\*["']\s*\]""", trigger[2]), trigger
    assert len(trigger) == 3, "nothing but a pushed v* tag triggers a release"


def test_only_the_publish_job_gets_an_id_token_and_nothing_else_any_permission() -> None:
    lines = _lines(RELEASE)
    assert "permissions: {}" in lines
    jobs = _jobs(lines)
    assert "publish" in jobs
    for name, job in jobs.items():
        granted = [line.strip() for line in job if re.search(r":\s*(read|write)$", line)]
        if name == "publish":
            assert [line.strip() for line in _block(job, "permissions", 4)[1:]] == [
                "id-token: write"
            ]
        else:
            assert not any(line.strip().startswith("permissions:") for line in job), name
            assert granted == [], name


def test_the_publish_job_uses_trusted_publishing_from_the_pypi_environment() -> None:
    lines = _lines(RELEASE)
    publish = _jobs(lines)["publish"]
    environment = [line.strip() for line in _block(publish, "environment", 4)]
    assert environment[0] == "environment: pypi" or "name: pypi" in environment
    assert any(use.startswith("pypa/gh-action-pypi-publish@") for use in _uses(publish))
    text = RELEASE.read_text()
    # Trusted publishing needs no credential: none is passed, none is read.
    assert "password:" not in text
    assert "secrets." not in text
    assert not re.search(r"(?i)\b(api[_-]?token|pypi[_-]?token|user(name)?:)", text)


def test_the_packages_are_built_once_checked_and_tested_before_publishing() -> None:
    jobs = _jobs(_lines(RELEASE))
    built = [
        name for name, job in jobs.items() if any("build-and-inspect" in u for u in _uses(job))
    ]
    assert built == ["build"]
    assert any("twine" in line and "check --strict" in line for line in jobs["build"])
    assert any("nox -s package" in line for line in jobs["package"])
    assert "needs: [build, package]" in [line.strip() for line in jobs["publish"]]


@pytest.mark.parametrize("workflow", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_action_is_pinned_by_commit(workflow: str) -> None:
    uses = _uses(_lines(WORKFLOWS / workflow))
    assert uses
    assert [use for use in uses if not PINNED.fullmatch(use)] == []


def test_the_readme_on_pypi_has_no_relative_links() -> None:
    """The installed metadata's README links point at the repository, not at local paths."""
    import re  # noqa: PLC0415

    description = importlib.metadata.metadata("django-lifespan-container")["Description"] or ""
    if not description:  # newer metadata keeps the README as the message body
        distribution = importlib.metadata.distribution("django-lifespan-container")
        description = (distribution.read_text("METADATA") or "").split("\n\n", 1)[-1]
    assert "## Quick start" in description
    assert re.findall(r"\]\((?!https?://|#)[^)]+\)", description) == []
