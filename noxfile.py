"""Every task of the project: lint, typing, tests on the Python x Django pairs, docs, demo.

Run through the bootstrap (``python3 tools/dev.py test``), which installs nox and
uv into ``.venv-dev`` and finds pyenv's interpreters. Sessions create their own
virtualenvs with uv.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["lint", "typing", "docs", "tests", "django_suites", "package"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")

# The oldest and the newest supported pair run by default; CI runs them all.
DEFAULT_PAIRS = [("3.11", "5.2"), ("3.13", "6.1")]
ALL_PAIRS = [("3.11", "5.2"), ("3.12", "5.2"), ("3.12", "6.0"), ("3.13", "6.0"), ("3.13", "6.1")]
PAIRS = ALL_PAIRS if os.environ.get("NOX_ALL_PAIRS") == "1" else DEFAULT_PAIRS


def group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


def build_wheel(session: nox.Session) -> Path:
    """Build the wheel into a fresh directory (or use NOX_WHEEL, built once by CI)."""
    if wheel := os.environ.get("NOX_WHEEL"):
        return Path(wheel).resolve()
    out = Path(tempfile.mkdtemp(prefix="lc-wheel-"))
    session.run("uv", "build", "--wheel", "--out-dir", str(out), str(ROOT), external=True)
    [wheel_path] = out.glob("*.whl")
    return wheel_path


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting."""
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typing(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the typing tests."""
    session.install("-e", ".", *group("typing"))
    session.run("mypy", "--strict", *session.posargs)


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation site, warnings as errors."""
    session.install("-e", ".", *group("docs"))
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        session.create_tmp() + "/site",
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
@nox.parametrize(("python", "django"), PAIRS, ids=[f"py{p}-django{d}" for p, d in PAIRS])
def tests(session: nox.Session, django: str) -> None:
    """The suite against the installed wheel, with branch coverage.

    The tests run from a copy outside the source tree, so ``import lifespan_container``
    finds the installed wheel and not the checkout.
    """
    wheel = build_wheel(session)
    session.install(str(wheel), f"django~={django}.0", *group("tests"))
    workdir = Path(session.create_tmp()).resolve() / "suite"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    shutil.copytree(ROOT / "tests", workdir / "tests")
    shutil.copytree(ROOT / "docs", workdir / "docs")
    shutil.copytree(ROOT / "demo", workdir / "demo", ignore=shutil.ignore_patterns("*.sqlite3"))
    shutil.copytree(ROOT / ".github", workdir / ".github")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, workdir / name)
    session.chdir(workdir)
    session.run(
        "python",
        "-c",
        "import lifespan_container, django, sys; "
        "assert 'site-packages' in lifespan_container.__file__, lifespan_container.__file__; "
        "print('testing', lifespan_container.__file__, 'with Django', django.__version__, "
        "'on Python', sys.version.split()[0])",
    )
    # The load tests exercise servers and PostgreSQL, not Django: the newest pair runs them.
    only_newest = [] if (session.python, django) == PAIRS[-1] else ["-m", "not load and not slow"]
    session.run("coverage", "erase")
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-W",
        "error::ResourceWarning",
        *only_newest,
        *session.posargs,
        env={"PYTHONDEVMODE": "1"},
    )
    # The demo's own suite (its settings, its conftest), counted in the same coverage.
    session.chdir(workdir / "demo")
    session.run(
        "coverage",
        "run",
        f"--rcfile={workdir / 'pyproject.toml'}",
        f"--data-file={workdir / '.coverage'}",
        "-m",
        "pytest",
        "-W",
        "error::ResourceWarning",
        env={"PYTHONDEVMODE": "1"},
    )
    session.chdir(workdir)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session
@nox.parametrize(("python", "django"), PAIRS, ids=[f"py{p}-django{d}" for p, d in PAIRS])
def django_suites(session: nox.Session, django: str) -> None:
    """Django's own tests of its ASGI handler, run against ours (issue 17).

    ``tools/django_suites.py`` downloads the installed Django's sdist (pip, from the
    package registry), extracts the ``asgi``, ``handlers``, ``signals`` and
    ``requests_tests`` packages with ``runtests.py``, rewrites the imports of
    ``get_asgi_application`` and ``ASGIHandler`` to ours (failing if one is not
    where it expects), and runs them with ``runtests.py``. Arguments go to
    ``runtests.py``: ``-- --verbosity=2`` or ``-- asgi.tests.ASGITest``.
    """
    wheel = build_wheel(session)
    session.install(str(wheel), f"django~={django}.0", "pip")
    workdir = Path(session.create_tmp()).resolve()
    session.chdir(workdir)  # out of the checkout: the wheel is what gets imported
    session.run(
        "python",
        "-c",
        "import lifespan_container; "
        "assert 'site-packages' in lifespan_container.__file__, lifespan_container.__file__",
    )
    session.run(
        "python",
        str(ROOT / "tools" / "django_suites.py"),
        f"--workdir={workdir}",
        *session.posargs,
    )


# The sdist's own tests that need no service, no server process and no pytester
# subprocesses: they prove the sdist is complete and installs, in well under a minute.
PACKAGE_TESTS = [
    "-m",
    "not services and not server and not load and not slow",
    "--ignore=tests/integration/test_pytest_plugin.py",
]


@nox.session(python="3.13")
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel, twine-check them, install the sdist, run its tests.

    The sdist goes into a fresh virtualenv (no editable install, no checkout on the
    path); its unpacked tree, minus its copy of the package, runs a fast, service-free
    part of its own suite against what was installed. ``NOX_DIST`` names a directory
    holding an sdist and a wheel built already (CI builds them once).
    """
    session.install("twine>=6.1")
    tmp = Path(session.create_tmp()).resolve()
    if prebuilt := os.environ.get("NOX_DIST"):
        dist = Path(prebuilt).resolve()
    else:
        dist = tmp / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        # uv builds the sdist, then the wheel from the sdist (not from the checkout).
        session.run("uv", "build", "--out-dir", str(dist), str(ROOT), external=True)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    session.run("twine", "check", "--strict", str(sdist), str(wheel))

    unpacked = tmp / "sdist"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    [tree] = unpacked.iterdir()
    # The tests must import the installed package, not the sdist's copy next to them.
    shutil.rmtree(tree / "lifespan_container")

    venv = tmp / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("uv", "venv", "--python", str(session.python), str(venv), external=True)
    python = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    tests_group = nox.project.dependency_groups(
        nox.project.load_toml(tree / "pyproject.toml"), "tests"
    )
    session.run("uv", "pip", "install", "--python", python, str(sdist), *tests_group, external=True)
    session.chdir(tree)
    session.run(
        python,
        "-c",
        "import importlib.metadata, lifespan_container, sys; "
        "assert 'site-packages' in lifespan_container.__file__, lifespan_container.__file__; "
        "installed = importlib.metadata.version('django-lifespan-container'); "
        "assert installed == lifespan_container.__version__, installed; "
        "print('testing the sdist install', installed, 'at', lifespan_container.__file__, "
        "'on Python', sys.version.split()[0])",
        external=True,
    )
    session.run(
        python,
        "-m",
        "pytest",
        "-W",
        "error::ResourceWarning",
        *(session.posargs or PACKAGE_TESTS),
        env={"PYTHONDEVMODE": "1"},
        external=True,
    )


@nox.session(python=["3.11", "3.13"])
def benchmarks(session: nox.Session) -> None:
    """Print the benchmark ratios (they report; they never fail the build)."""
    session.install(str(build_wheel(session)), *group("benchmarks"))
    session.chdir(ROOT / "benchmarks")
    session.run("python", "inject.py")
    session.run("python", "startup.py")
    session.run("python", "handler_overhead.py", "--rounds", "30", "--requests", "150")
    session.run("python", "request_scope.py", "--rounds", "30", "--requests", "150")
    session.run("python", "load.py")


@nox.session
def demo(session: nox.Session) -> None:
    """Serve the demo project under uvicorn (lifespan on) on 127.0.0.1; Ctrl+C stops it."""
    session.install("-e", ".", *group("demo"))
    session.chdir(ROOT / "demo")
    # Ctrl+C reaches uvicorn too: give its graceful shutdown all the time it needs.
    session.run("python", "run.py", *session.posargs, interrupt_timeout=None)
