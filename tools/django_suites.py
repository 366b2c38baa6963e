"""Run Django's own test suites for the ASGI handler against ours (issue 17).

    python tools/django_suites.py --workdir DIR [RUNTESTS_ARGS...]

Run by the ``django_suites`` nox session, in a virtualenv that holds the wheel and
one Django. It downloads that Django's sdist from the package registry (pip, the
only network use), extracts ``tests/runtests.py``, ``tests/test_sqlite.py`` and the
test packages in :data:`LABELS`, and rewrites their import lines so that
``get_asgi_application`` is ``lifespan_container.asgi``'s and ``ASGIHandler`` is
``lifespan_container.handler.LifespanHandler``. Each rewrite in :data:`EXPECTED`
must happen, and no other way to reach Django's own two must remain: if Django
moves an import, this fails instead of testing Django against itself.

Django's ``runtests.py`` then runs the labels with a settings module written next
to it (``test_sqlite``'s settings, ``LIFESPAN_CONTAINER = {"CONTAINER": None}``,
and :class:`SuiteRunner` as ``TEST_RUNNER``). ``runtests.py`` replaces
``INSTALLED_APPS`` with its own list, so the runner installs ``lifespan_container``
(which the handler requires) before the suite is built; it checks at run time
that the test modules hold our objects, prints the count of each label and fails
on any failure, or on a label where no test passed (none ran, or all were skipped).

Other arguments go to ``runtests.py``: options in one word (``--verbosity=2``,
``-v2``, ``--failfast``), and labels, which replace the default ones
(``asgi.tests.ASGITest.test_get_query_string``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import unittest
from pathlib import Path
from typing import Any

import django
from django.test.runner import DiscoverRunner

LABELS = ("asgi", "handlers", "signals", "requests_tests")
"""Django's test packages that exercise the code our handler overrides or relies on."""

SUPPORT_FILES = ("runtests.py", "test_sqlite.py", "urls.py")
"""What ``runtests.py`` needs besides the test packages (``urls``: the default URLconf)."""

SETTINGS_MODULE = "lifespan_suite_settings"

REPLACEMENTS = {
    ("django.core.asgi", "get_asgi_application"): (
        "lifespan_container.asgi",
        "get_asgi_application",
    ),
    ("django.core.handlers.asgi", "ASGIHandler"): ("lifespan_container.handler", "LifespanHandler"),
}
"""Django's (module, name) -> ours."""

EXPECTED = {
    ("asgi.tests", "get_asgi_application"),
    ("asgi.tests", "ASGIHandler"),
}
"""(test module, name) pairs that must be rewritten; checked again at run time."""

FORBIDDEN = re.compile(r"django\.core\.asgi|django\.core\.handlers\.asgi\.ASGIHandler")
"""Any other way to name Django's two, left in a test file after the rewrite."""


MARK = "rewritten by lifespan_container's tools/django_suites.py"


class PatchError(RuntimeError):
    """The sdist is not as this tool expects: fix the tool, never the assertion."""


# -- Preparing the tests: download, extract, rewrite, settings ---------------------------


def download_sdist(version: str, into: Path) -> Path:
    """Django's sdist of ``version``, from the registry (once per work directory)."""
    wanted = f"django-{version}.tar.gz"
    found = [path for path in into.glob("*.tar.gz") if path.name.lower() == wanted]
    if not found:
        into.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        command += ["--no-binary", ":all:", "--dest", str(into), f"django=={version}"]
        subprocess.run(command, check=True)
        found = [path for path in into.glob("*.tar.gz") if path.name.lower() == wanted]
    if len(found) != 1:
        raise PatchError(f"expected one {wanted} in {into}, found {found}")
    return found[0]


def extract_tests(sdist: Path, into: Path) -> Path:
    """Extract :data:`SUPPORT_FILES` and the :data:`LABELS` packages; their directory."""
    shutil.rmtree(into, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
        roots = {Path(member.name).parts[0] for member in members}
        if len(roots) != 1:
            raise PatchError(f"{sdist.name} has {len(roots)} top directories: {sorted(roots)}")
        prefix = f"{roots.pop()}/tests/"
        wanted = [f"{prefix}{name}" for name in SUPPORT_FILES]
        chosen = [
            member
            for member in members
            if member.name in wanted
            or any(member.name.startswith(f"{prefix}{label}/") for label in LABELS)
        ]
        missing = [
            name
            for name in [*wanted, *(f"{prefix}{label}/__init__.py" for label in LABELS)]
            if name not in {member.name for member in chosen}
        ]
        if missing:
            raise PatchError(f"{sdist.name} lacks {', '.join(missing)}")
        archive.extractall(into, members=chosen, filter="data")
    return into / prefix


@dataclasses.dataclass
class Rewrite:
    """One import line rewritten: where, and which of Django's names it replaced."""

    module: str
    line: int
    names: list[str]


def rewrite_imports(path: Path, module: str) -> list[Rewrite]:
    """Rewrite, in place, the imports of :data:`REPLACEMENTS` in one test file.

    ``from django.core.handlers.asgi import ASGIHandler, ASGIRequest`` becomes
    ``from django.core.handlers.asgi import ASGIRequest`` and
    ``from lifespan_container.handler import LifespanHandler as ASGIHandler``;
    an ``as`` name is kept. Only a statement alone on its lines is rewritten.
    """
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    done: list[Rewrite] = []
    nodes = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)]
    # Bottom up, so that the line numbers of the statements above stay right.
    for node in sorted(nodes, key=lambda node: node.lineno, reverse=True):
        if node.level or node.module is None:
            continue
        ours = [alias for alias in node.names if (node.module, alias.name) in REPLACEMENTS]
        if not ours:
            continue
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        indent = lines[first][: node.col_offset]
        rest = lines[last][node.end_col_offset or 0 :].strip()
        if indent.strip() or (rest and not rest.startswith("#")):
            raise PatchError(f"{path}:{node.lineno}: the import shares its line; rewrite it")
        kept = [alias for alias in node.names if alias not in ours]
        new = []
        if kept:
            names = ", ".join(ast.unparse(alias) for alias in kept)
            new.append(f"{indent}from {node.module} import {names}\n")
        for alias in ours:
            target_module, target_name = REPLACEMENTS[node.module, alias.name]
            bound = alias.asname or alias.name
            imported = target_name if bound == target_name else f"{target_name} as {bound}"
            new.append(f"{indent}from {target_module} import {imported}  # {MARK}\n")
        lines[first : last + 1] = new
        done.insert(0, Rewrite(module, node.lineno, [alias.name for alias in ours]))
    if done:
        rewritten = "".join(lines)
        ast.parse(rewritten)  # still Python
        path.write_text(rewritten, encoding="utf-8")
    return done


def leftovers(path: Path) -> list[str]:
    """Every way ``path`` still reaches Django's ``get_asgi_application`` or ``ASGIHandler``."""
    source = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if (node.module, alias.name) in REPLACEMENTS or dotted == "django.core.asgi":
                    found.append(f"{path}:{node.lineno}: imports {dotted}")
        elif isinstance(node, ast.Import):
            found += [
                f"{path}:{node.lineno}: imports {alias.name}"
                for alias in node.names
                if alias.name in {"django.core.asgi", "django.core.handlers.asgi"}
            ]
    found += [
        f"{path}:{number}: {line.strip()}"
        for number, line in enumerate(source.splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    return found


def patch_tests(tests: Path) -> list[Rewrite]:
    """Rewrite the imports of every test file; raise unless exactly what is expected."""
    done: list[Rewrite] = []
    problems: list[str] = []
    for label in LABELS:
        for path in sorted((tests / label).rglob("*.py")):
            module = ".".join(path.relative_to(tests).with_suffix("").parts)
            done += rewrite_imports(path, module)
            problems += leftovers(path)
    found = {(rewrite.module, name) for rewrite in done for name in rewrite.names}
    problems += [
        f"{module}: no import of {name} to rewrite" for module, name in sorted(EXPECTED - found)
    ]
    problems += [
        f"{module}: rewrote {name}, which EXPECTED does not list (add it there)"
        for module, name in sorted(found - EXPECTED)
    ]
    if problems:
        raise PatchError(
            "The Django tests do not reach the handler as this tool expects, so they "
            "would test Django's own handler. Update tools/django_suites.py:\n  "
            + "\n  ".join(problems)
        )
    return done


def write_settings(tests: Path) -> None:
    """The settings: ``test_sqlite``'s, our app's setting, and :class:`SuiteRunner`."""
    (tests / f"{SETTINGS_MODULE}.py").write_text(
        "# Written by lifespan_container's tools/django_suites.py.\n"
        "from test_sqlite import *  # noqa: F403\n\n"
        "# The handler requires the setting; None: no container, only the lifespan.\n"
        'LIFESPAN_CONTAINER = {"CONTAINER": None}\n'
        "# It installs lifespan_container (runtests.py sets INSTALLED_APPS itself).\n"
        'TEST_RUNNER = "django_suites.SuiteRunner"\n',
        encoding="utf-8",
    )


# -- Running them: the runner that runtests.py uses ------------------------------------


FIXTURE = re.compile(r"(?:setUp|tearDown)(?:Class|Module) \(([\w.]+)\)")
"""The id unittest gives a class or module fixture's error: ``setUpClass (asgi.tests.X)``."""


@dataclasses.dataclass
class Tally:
    """One label's counts."""

    tests: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def passed(self) -> int:
        """The tests that neither failed nor were skipped."""
        return self.tests - self.failed - self.skipped


def tally(test_ids: list[str], result: unittest.TestResult) -> tuple[dict[str, Tally], list[str]]:
    """Each label's counts, and the ids of what failed (tests and fixtures).

    A test fails when it (or one of its subtests) fails or errors, passes while
    expected to fail, or cannot run because its class or module fixture failed.
    """
    broken = [
        *(test.id() for test, _ in [*result.failures, *result.errors]),
        *(test.id() for test in result.unexpectedSuccesses),
    ]
    fixtures = {match.group(1) for name in broken if (match := FIXTURE.fullmatch(name))}
    failed = {name for name in broken if not FIXTURE.fullmatch(name)}
    failed_tests = {
        test_id
        for test_id in test_ids
        if any(name == test_id or name.startswith(f"{test_id} (") for name in failed)
        or any(test_id.startswith(f"{where}.") for where in fixtures)
    }
    skipped = {test.id() for test, _ in [*result.skipped, *result.expectedFailures]}
    tallies: dict[str, Tally] = {}
    for test_id in test_ids:
        counts = tallies.setdefault(label_of(test_id), Tally())
        counts.tests += 1
        counts.failed += test_id in failed_tests
        counts.skipped += test_id in skipped - failed_tests
    # A fixture that failed after its tests passed (tearDownClass) fails too.
    unmatched = sorted(
        name
        for name in broken
        if (match := FIXTURE.fullmatch(name))
        and not any(test_id.startswith(f"{match.group(1)}.") for test_id in failed_tests)
    )
    for name in unmatched:
        tallies.setdefault(label_of(FIXTURE.sub(r"\1", name)), Tally()).failed += 1
    return tallies, sorted(failed_tests) + unmatched


def test_cases(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    """The suite's tests, in order."""
    found: list[unittest.TestCase] = []
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            found += test_cases(test)
        else:
            found.append(test)
    return found


def label_of(test_id: str) -> str:
    """``asgi.tests.ASGITest.test_x`` -> ``asgi``."""
    return test_id.split(".", maxsplit=1)[0]


class SuiteRunner(DiscoverRunner):
    """Django's runner, with ``lifespan_container`` installed and the counts printed."""

    labels: list[str]
    test_ids: list[str]

    def setup_test_environment(self, **kwargs: Any) -> None:
        """Install ``lifespan_container``: ``runtests.py`` set ``INSTALLED_APPS`` to its own."""
        from django.apps import apps  # noqa: PLC0415
        from django.conf import settings  # noqa: PLC0415

        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "lifespan_container"]
        apps.set_installed_apps(settings.INSTALLED_APPS)
        super().setup_test_environment(**kwargs)

    def run_tests(self, test_labels: list[str], **kwargs: Any) -> int:
        """Remember the labels, to report one that ran no test."""
        self.labels = list(test_labels)
        return super().run_tests(test_labels, **kwargs)

    def run_suite(self, suite: unittest.TestSuite, **kwargs: Any) -> unittest.TextTestResult:
        """Note the tests' ids first: running the suite empties it."""
        self.test_ids = [test.id() for test in test_cases(suite)]
        return super().run_suite(suite, **kwargs)

    def suite_result(
        self, suite: unittest.TestSuite, result: unittest.TextTestResult, **kwargs: Any
    ) -> int:
        """Django's count of failures, plus one per wrong binding or label that ran nothing."""
        failures: int = super().suite_result(suite, result, **kwargs)
        tallies, failed = tally(self.test_ids, result)
        problems = check_bindings()
        print("\nDjango's tests with lifespan_container's handler:")
        print(f"  {'label':<16}{'tests':>6}{'passed':>8}{'failed':>8}{'skipped':>9}")
        for label in sorted({*tallies, *map(label_of, self.labels)}):
            counts = tallies.get(label, Tally())
            print(
                f"  {label:<16}{counts.tests:>6}{counts.passed:>8}{counts.failed:>8}"
                f"{counts.skipped:>9}"
            )
            if not counts.passed:  # none ran, or every one was skipped
                problems.append(f"{label}: no test passed")
        print("".join(f"  FAILED {name}\n" for name in failed), end="")
        print("".join(f"  ERROR {problem}\n" for problem in problems), end="")
        total = Tally(
            tests=sum(counts.tests for counts in tallies.values()),
            failed=sum(counts.failed for counts in tallies.values()),
            skipped=sum(counts.skipped for counts in tallies.values()),
        )
        summary = f"{total.passed} passed, {total.failed} failed, {total.skipped} skipped"
        if problems:
            summary += f"; {len(problems)} errors in the setup (see ERROR above): FAILED"
        print(f"django_suites: {summary}")
        return failures + len(problems)


def check_bindings() -> list[str]:
    """That each test module of :data:`EXPECTED` holds our object under Django's name."""
    problems = []
    for module, name in sorted(EXPECTED):
        if module not in sys.modules:
            continue  # its label was not asked for
        django_module = next(m for m, n in REPLACEMENTS if n == name)
        target_module, target_name = REPLACEMENTS[django_module, name]
        ours = getattr(importlib.import_module(target_module), target_name)
        found = getattr(sys.modules[module], name, None)
        if found is not ours:
            problems.append(f"{module}.{name} is {found!r}, not {target_module}.{target_name}")
    return problems


# -- The command -------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="where to download and run")
    options, runtests_args = parser.parse_known_args(argv)
    import lifespan_container  # noqa: PLC0415

    workdir: Path = options.workdir.resolve()
    version = django.__version__
    print(
        f"Django {version}'s tests against lifespan_container {lifespan_container.__version__} "
        f"at {Path(lifespan_container.__file__).parent}, on Python {sys.version.split()[0]}",
        flush=True,
    )
    sdist = download_sdist(version, workdir / "sdist")
    tests = extract_tests(sdist, workdir / "django")
    for rewrite in patch_tests(tests):
        print(f"  rewrote {rewrite.module} line {rewrite.line}: {', '.join(rewrite.names)}")
    write_settings(tests)

    labels = [arg for arg in runtests_args if not arg.startswith("-")] or list(LABELS)
    flags = [arg for arg in runtests_args if arg.startswith("-")]
    command = [sys.executable, "-W", "default", "runtests.py", f"--settings={SETTINGS_MODULE}"]
    # One process: the runner installs the app in this one only (workers re-run
    # runtests.py's own setup).
    command += ["--parallel=1", "--noinput", *flags, *labels]
    tools = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [tools, os.environ.get("PYTHONPATH")])),
    }
    print(" ".join(command), flush=True)
    return subprocess.run(command, cwd=tests, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
