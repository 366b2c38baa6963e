"""The code in the docs and the README is valid Python (the docs issue runs it too)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Registry

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_there_are_pages_with_examples() -> None:
    assert len([page for page in PAGES if BLOCK.search(page.read_text())]) >= 4


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_python_examples_compile(page: Path) -> None:
    for number, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
        compile(match.group(1), f"{page.name} example {number}", "exec")


def _blocks(page: str) -> list[str]:
    return [m.group(1) for m in BLOCK.finditer((ROOT / "docs" / page).read_text())]


@pytest.mark.services
@pytest.mark.asyncio
async def test_the_database_pools_page_opens_a_real_pool_and_redis_client(
    postgres_dsn: str, redis_url: str
) -> None:
    """The psycopg and Redis examples, as written, open and close through the lifecycle."""
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    psycopg_example, _, redis_example = _blocks("how-to/database-pools.md")[:3]
    namespace: dict[str, object] = {}
    exec(compile(psycopg_example, "database-pools.md", "exec"), namespace)  # noqa: S102
    exec(compile(redis_example, "database-pools.md", "exec"), namespace)  # noqa: S102
    container = namespace["Container"]()  # type: ignore[operator]
    container.config.DATABASE_URL.from_value(postgres_dsn)
    container.cache = namespace["providers"].Resource(  # type: ignore[attr-defined]
        namespace["redis_client"], redis_url
    )
    lifecycle = ResourceLifecycle(container)
    assert await lifecycle.start() == []
    async with container.db_pool().connection() as connection:
        cursor = await connection.execute("SELECT current_setting('application_name')")
        assert await cursor.fetchone() == ("myproject",)
    assert await container.cache().ping()
    assert await lifecycle.stop(10) == []


async def _closes_badly() -> AsyncIterator[str]:
    yield "broken"
    raise OSError("socket already closed")


def _operations_container() -> Any:
    from dependency_injector import containers, providers  # noqa: PLC0415

    async def value() -> AsyncIterator[str]:
        yield "db"

    built = containers.DynamicContainer()
    built.db = providers.Resource(value)
    built.broken = providers.Resource(_closes_badly)
    return built


async def _run_lifecycle(connect: Callable[[], None], disconnect: Callable[[], None]) -> None:
    """Open and close a container with the recipe's receivers connected."""
    from lifespan_container.runtime import Runtime  # noqa: PLC0415

    lifecycle = Runtime(_operations_container()).lifecycle
    assert lifecycle is not None
    connect()
    try:
        assert await lifecycle.start() == []
        [failure] = await lifecycle.stop(5)
        assert "socket already closed" in str(failure)
    finally:
        disconnect()


def _disconnect_all(namespace: dict[str, Any]) -> Callable[[], None]:
    from lifespan_container import signals  # noqa: PLC0415

    def disconnect() -> None:
        for signal in (signals.resource_started, signals.resource_stopped, signals.resource_failed):
            for receiver in list(namespace.values()):
                if callable(receiver):
                    signal.disconnect(receiver)

    return disconnect


def _operations_blocks() -> dict[str, str]:
    blocks = _blocks("how-to/operations.md")
    return {
        "health": next(b for b in blocks if "@health_check" in b),
        "logging": next(b for b in blocks if "class JSONFormatter" in b),
        "prometheus": next(b for b in blocks if "prometheus_client" in b),
        "opentelemetry": next(b for b in blocks if "opentelemetry" in b),
    }


@pytest.mark.asyncio
async def test_the_operations_page_prometheus_recipe_counts_real_events() -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    namespace: dict[str, Any] = {}
    exec(compile(_operations_blocks()["prometheus"], "operations.md", "exec"), namespace)  # noqa: S102
    try:
        await _run_lifecycle(namespace["connect"], _disconnect_all(namespace))
        sample = REGISTRY.get_sample_value
        labels = {"resource": "db", "action": "start"}
        assert sample("resource_lifecycle_seconds_count", labels) == 1
        assert sample("resource_lifecycle_seconds_count", {**labels, "action": "stop"}) == 1
        failures = {"resource": "broken", "action": "stop"}
        assert sample("resource_failures_total", failures) == 1
    finally:
        REGISTRY.unregister(namespace["RESOURCE_SECONDS"])
        REGISTRY.unregister(namespace["RESOURCE_FAILURES"])


@pytest.mark.asyncio
async def test_the_operations_page_opentelemetry_recipe_records_spans() -> None:
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )
    from opentelemetry.trace import StatusCode  # noqa: PLC0415

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    namespace: dict[str, Any] = {}
    exec(compile(_operations_blocks()["opentelemetry"], "operations.md", "exec"), namespace)  # noqa: S102
    try:
        await _run_lifecycle(namespace["connect"], _disconnect_all(namespace))
    finally:
        provider.shutdown()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {
        "resource start db",
        "resource start broken",
        "resource stop db",
        "resource stop broken",
    }
    assert spans["resource stop broken"].status.status_code is StatusCode.ERROR
    assert spans["resource stop broken"].events[0].name == "exception"
    assert spans["resource stop db"].status.status_code is StatusCode.UNSET
    db = spans["resource start db"]
    assert db.start_time is not None
    assert db.end_time is not None
    assert db.end_time >= db.start_time
    assert db.attributes == {"resource.name": "db", "resource.action": "start", "outcome": "ok"}


@pytest.mark.asyncio
async def test_the_operations_page_json_formatter_and_health_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from lifespan_container.engine.health_checks import DECLARED  # noqa: PLC0415

    blocks = _operations_blocks()
    namespace: dict[str, Any] = {}
    exec(compile(blocks["logging"], "operations.md", "exec"), namespace)  # noqa: S102
    assert namespace["LOGGING"]["formatters"]["json"]["()"] == "myproject.logging.JSONFormatter"
    caplog.set_level(logging.INFO, "lifespan_container")
    await _run_lifecycle(lambda: None, lambda: None)
    formatter = namespace["JSONFormatter"]()
    lines = [
        json.loads(formatter.format(r))
        for r in caplog.records
        if r.name == "lifespan_container.resources"
    ]
    assert lines[0]["logger"] == "lifespan_container.resources"
    assert {(line["resource"], line["action"], line["outcome"]) for line in lines} == {
        ("db", "start", "ok"),
        ("broken", "start", "ok"),
        ("db", "stop", "ok"),
        ("broken", "stop", "failed"),
    }
    failed = next(line for line in lines if line["outcome"] == "failed")
    assert "OSError: socket already closed" in failed["traceback"]
    assert all(isinstance(line["duration"], float) for line in lines)

    health: dict[str, Any] = {"__name__": "myproject.containers"}
    exec(compile(blocks["health"], "operations.md", "exec"), health)  # noqa: S102
    container = health["Container"]()
    declared = DECLARED.for_resource(container, "search")
    assert declared is not None
    assert declared.label == "myproject.containers.search_answers"


def _files(text: str) -> dict[str, str]:
    """The examples that open with their file's name (``# myproject/views.py``), by name."""
    found: dict[str, str] = {}
    for match in BLOCK.finditer(text):
        first = match.group(1).partition("\n")[0]
        if name := re.fullmatch(r"# ([\w/]+\.py)\b.*", first):
            found[name.group(1)] = match.group(1)
    return found


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


@pytest.mark.server
def test_the_readme_quick_start_logs_its_resource_under_uvicorn(tmp_path: Path) -> None:
    """The promise under the quick start: its LOGGING shows the resource opening and closing."""
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from tests.servers.process import serve  # noqa: PLC0415

    files = _files(_section((ROOT / "README.md").read_text(encoding="utf-8"), "## Quick start"))
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "myproject", str(project)],
        check=True,
        timeout=120,
    )
    settings = project / "myproject" / "settings.py"
    added = files.pop("settings.py").replace("[...,", "[*INSTALLED_APPS,")
    settings.write_text(settings.read_text(encoding="utf-8") + "\n" + added, encoding="utf-8")
    for name in ("myproject/containers.py", "myproject/asgi.py", "myproject/views.py"):
        (project / name).write_text(files[name], encoding="utf-8")
    argv = [sys.executable, "-m", "uvicorn", "myproject.asgi:application", "--lifespan", "on"]
    argv += ["--host", "127.0.0.1", "--port", "{port}"]
    env = {"DJANGO_SETTINGS_MODULE": "myproject.settings", "PYTHONPATH": str(project)}
    with serve(argv, env, tmp_path) as server:
        server.wait_until_serving("/")
        server.signal(signal.SIGTERM)
        server.wait()
        log = server.stderr
    opened = log.index("Opened resource 'http' in ")
    assert opened < log.index("Application startup complete."), log
    assert "Closed resource 'http' in " in log[opened:], log


@pytest.mark.services
@pytest.mark.asyncio
async def test_the_sync_views_page_redis_example_warns_nothing(
    redis_url: str,
    install_container: Callable[[Any], Any],
    monkeypatch: pytest.MonkeyPatch,
    registry: Registry,
) -> None:
    """The sync view runs its Redis commands on the serving loop, under filterwarnings=error."""
    import sys  # noqa: PLC0415
    import types  # noqa: PLC0415

    from asgiref.sync import sync_to_async  # noqa: PLC0415
    from dependency_injector import containers, providers  # noqa: PLC0415
    from django.test import RequestFactory  # noqa: PLC0415

    redis_client: dict[str, Any] = {}
    exec(compile(_blocks("how-to/database-pools.md")[2], "database-pools.md", "exec"), redis_client)  # noqa: S102

    class Container(containers.DeclarativeContainer):
        cache = providers.Resource(redis_client["redis_client"], redis_url)

    module = types.ModuleType("myproject.containers")
    module.Container = Container  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myproject", types.ModuleType("myproject"))
    monkeypatch.setitem(sys.modules, "myproject.containers", module)
    page = (ROOT / "docs" / "how-to" / "sync-views.md").read_text(encoding="utf-8")
    # The page's @inject view names this test's container: `registry` forgets it after.
    views: dict[str, Any] = {}
    exec(compile(_files(page)["myproject/views.py"], "sync-views.md", "exec"), views)  # noqa: S102
    runtime = install_container(Container())
    assert await runtime.lifecycle.start() == []
    try:
        await runtime.container.cache().delete("visits")
        request = RequestFactory().get("/visits")
        first = await sync_to_async(views["count_visit"])(request)
        second = await sync_to_async(views["count_visit"])(request)
        assert [first.content, second.content] == [b'{"visits": 1}', b'{"visits": 2}']
        assert 0 < await runtime.container.cache().ttl("visits") <= 86400
    finally:
        await runtime.container.cache().delete("visits")
        assert await runtime.lifecycle.stop(10) == []


@pytest.mark.asyncio
async def test_the_migrating_page_context_manager_works_unchanged_as_a_resource() -> None:
    """What it yields is the resource's value; its exit closes the client at shutdown."""
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    page = (ROOT / "docs" / "how-to" / "migrating.md").read_text(encoding="utf-8")
    namespace: dict[str, Any] = {}
    exec(compile(_files(page)["myproject/containers.py"], "migrating.md", "exec"), namespace)  # noqa: S102
    container = namespace["Container"]()
    lifecycle = ResourceLifecycle(container)
    assert await lifecycle.start() == []
    clients = container.clients()
    assert not clients["http"].is_closed
    assert str(clients["http"].base_url) == "https://api.example.com"
    assert await lifecycle.stop(10) == []
    assert clients["http"].is_closed


def test_the_migrating_page_test_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its containers.py, views.py and test, in a project: the ported test passes as written."""
    # The outer session's settings (pytest-django exports them) would win over the ini.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "myproject.settings")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    page = (ROOT / "docs" / "how-to" / "migrating.md").read_text(encoding="utf-8")
    files = _files(page)
    assert set(files) == {"myproject/containers.py", "myproject/views.py", "tests/test_weather.py"}
    files["myproject/__init__.py"] = ""
    files["myproject/urls.py"] = (
        "from django.urls import path\n\nfrom myproject import views\n\n"
        'urlpatterns = [path("weather", views.weather)]\n'
    )
    files["myproject/settings.py"] = (
        'SECRET_KEY = "docs-only"\nALLOWED_HOSTS = ["*"]\nROOT_URLCONF = "myproject.urls"\n'
        'INSTALLED_APPS = ["lifespan_container"]\n'
        'LIFESPAN_CONTAINER = {"CONTAINER": "myproject.containers.Container"}\n'
    )
    _write_project(pytester, files)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1)


def test_the_api_reference_reads_the_sphinx_docstrings_as_markdown() -> None:
    """docs/_ext/rst_roles.py: roles, code blocks and definition lists become Markdown."""
    griffe = pytest.importorskip("griffe", reason="griffe comes with the docs dependencies")
    extension = str(ROOT / "docs" / "_ext" / "rst_roles.py")
    package = griffe.load(
        "lifespan_container",
        extensions=griffe.load_extensions(extension),
        docstring_parser="sphinx",
    )

    def docstrings(obj: Any) -> list[str]:
        found = [obj.docstring.value] if obj.docstring else []
        for member in obj.members.values():
            if not member.is_alias:
                found += docstrings(member)
        return found

    leftovers = [
        text
        for text in docstrings(package)
        if re.search(r":(class|func|meth|attr|data|exc|mod):`|\.\. code-block::", text)
    ]
    assert leftovers == []
    views = package["views"].docstring.value
    liveness = '<autoref identifier="lifespan_container.views.liveness" optional>`liveness()`'
    assert f"{liveness}</autoref>\n:   200 whenever the process answers" in views
    assert "\n```python\nurlpatterns = [\n" in views
    started = package["lifecycle.ResourceLifecycle.started"].docstring.value
    # The engine's canonical path: autorefs links it to the public page's anchor.
    assert "lifespan_container.engine.lifecycle.ResourceLifecycle.start" in started
    runner = package["runner.with_resources"].docstring.value
    assert "``handle``:\n\n```python\nclass Command(BaseCommand):\n" in runner
    open_resources = package["runner.open_resources"].docstring.value
    startup_failed = "lifespan_container.exceptions.StartupFailedError"
    assert f'<autoref identifier="{startup_failed}" optional>`StartupFailedError`' in open_resources
    bases = [str(base) for base in package["exceptions.StartupFailedError"].bases]
    assert bases == ["LifespanContainerError"]


@pytest.mark.asyncio
async def test_the_lifespan_page_state_example_is_shared_read_only() -> None:
    """What the receiver stores is one object in every request's shallow copy, read-only."""
    from lifespan_container.signals import asgi_startup  # noqa: PLC0415

    page = (ROOT / "docs" / "explanation" / "lifespan.md").read_text(encoding="utf-8")
    block = next(b for b in BLOCK.findall(page) if "MappingProxyType" in b)
    namespace: dict[str, Any] = {}
    exec(compile(block, "lifespan.md", "exec"), namespace)  # noqa: S102
    receiver = namespace["publish_build_info"]
    assert asgi_startup.disconnect(receiver)
    await receiver(scope={"type": "lifespan"}, state=None)
    state: dict[str, Any] = {}
    await receiver(scope={"type": "lifespan"}, state=state)
    first, second = dict(state), dict(state)  # what a server gives two requests
    assert first["build"] is second["build"]
    with pytest.raises(TypeError):
        first["build"]["version"] = "changed"


def test_the_configuration_page_example_serves_its_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its settings, container, services and view, in a project: check passes, tests pass."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "myproject.settings")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    page = (ROOT / "docs" / "how-to" / "configuration.md").read_text(encoding="utf-8")
    files = _files(_section(page, "## Every setting, by default"))
    files.update(_files(_section(page, "## In tests")))
    assert set(files) == {
        "myproject/settings.py",
        "myproject/containers.py",
        "myproject/services.py",
        "myproject/views.py",
        "tests/test_search.py",
    }
    files["myproject/__init__.py"] = ""
    files["myproject/urls.py"] = (
        "from django.urls import path\n\nfrom myproject import views\n\n"
        'urlpatterns = [path("", views.index)]\n'
    )
    files["myproject/settings.py"] = (
        'SECRET_KEY = "docs-only"\nALLOWED_HOSTS = ["*"]\nROOT_URLCONF = "myproject.urls"\n'
        'INSTALLED_APPS = ["lifespan_container"]\n' + files["myproject/settings.py"]
    )
    # What the page says: the options have their values before the checks and the views.
    files["tests/test_checks.py"] = (
        "from django.core.management import call_command\n\n"
        "from lifespan_container import get_container\n\n\n"
        "def test_the_checks_pass_and_the_configuration_is_filled():\n"
        '    call_command("check")\n'
        "    config = get_container().config\n"
        '    assert config.DEFAULT_QUERY() == "Dependency Injector"\n'
        "    assert config.GITHUB_TOKEN() is None\n"
        "    assert config.GITHUB_REQUEST_TIMEOUT() == 10\n"
    )
    _write_project(pytester, files)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests", timeout=120)
    result.assert_outcomes(passed=3)


def test_the_configuration_page_sources_and_the_check_it_shows(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settings:WEATHER then env:WEATHER_; without api_url, E012 says what the page shows."""
    from lifespan_container._configuration import (  # noqa: PLC0415
        configuration_problems,
        fill_configuration,
    )

    page = (ROOT / "docs" / "how-to" / "configuration.md").read_text(encoding="utf-8")
    section = _section(page, "## Choose the sources")
    files = _files(section)
    configured: dict[str, Any] = {}
    exec(compile(files["myproject/settings.py"], "configuration.md", "exec"), configured)  # noqa: S102
    namespace: dict[str, Any] = {}
    exec(compile(files["myproject/containers.py"], "configuration.md", "exec"), namespace)  # noqa: S102
    settings.LIFESPAN_CONTAINER = {
        **configured["LIFESPAN_CONTAINER"],
        "CONTAINER": "tests.containers.Container",  # the class is made here, not imported
    }
    settings.WEATHER = configured["WEATHER"]
    for name in [name for name in os.environ if name.startswith("WEATHER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WEATHER_TIMEOUT", "2.5")
    container = namespace["Container"]()
    fill_configuration(container)
    assert container.weather() == {"api_url": "https://api.example.com", "timeout": "2.5"}
    assert container.config.WEATHER() == configured["WEATHER"]
    assert configuration_problems(container) == []

    settings.WEATHER = {"timeout": 5}
    container = namespace["Container"]()
    fill_configuration(container)
    [problem] = configuration_problems(container)
    shown = _section(page, "## Required options and the checks")
    assert f"?: ({problem.id}) {problem.msg}\n\tHINT: {problem.hint}\n" in shown


def _write_project(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    """Write ``files`` (path -> source) under pytester's directory, with its pytest.ini."""
    for name, source in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    pytester.makeini(
        """
        [pytest]
        DJANGO_SETTINGS_MODULE = myproject.settings
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )
