"""The resources outside HTTP: run(), @with_resources, ResourceCommand, `manage.py resources`."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from dependency_injector import containers, providers
from django.core.management import BaseCommand, CommandError, call_command

from lifespan_container import Provide, get_container, inject
from lifespan_container.exceptions import ResourcesNotStartedError, StartupFailedError
from lifespan_container.health import health_check
from lifespan_container.runner import ResourceCommand, open_resources, run, with_resources
from lifespan_container.runtime import Runtime, get_runtime
from tests.containers import BrokenContainer, Container, Files

Install = Callable[[Any], Runtime]


@inject
async def greet(name: str, greeting: str = Provide[Container.greeting]) -> str:
    return f"{greeting}, {name}"


def test_run_opens_the_resources_around_a_coroutine_and_closes_them() -> None:
    assert run(greet("script")) == "hello, script"
    assert get_runtime().phase == "stopped"
    with pytest.raises(ResourcesNotStartedError):
        get_container().greeting()


def test_run_takes_a_coroutine_as_asyncio_run_does() -> None:
    with pytest.raises(TypeError, match=r"run\(\) takes a coroutine, as asyncio.run\(\) does"):
        run(greet)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_run_refuses_a_running_loop_without_a_never_awaited_warning() -> None:
    with pytest.raises(RuntimeError, match=r"use `async with lifespan_container.runner"):
        run(greet("inside a loop"))


def test_a_failed_startup_raises_and_never_starts_main(install_container: Install) -> None:
    install_container(BrokenContainer())
    started: list[str] = []

    async def main() -> None:  # pragma: no cover (must not run)
        started.append("main")

    with pytest.raises(StartupFailedError, match=r"resource 'search' raised ConnectionRefused"):
        run(main())  # and no "coroutine was never awaited" warning: warnings are errors
    assert started == []


def test_what_main_raises_is_raised_after_the_resources_closed() -> None:
    async def main() -> None:
        get_container().greeting()  # open here
        raise LookupError("no such city")

    with pytest.raises(LookupError, match="no such city"):
        run(main())
    with pytest.raises(ResourcesNotStartedError):
        get_container().greeting()


def test_with_resources_runs_sync_code_in_a_thread_of_the_resources_loop() -> None:
    @with_resources
    @inject
    def report(
        files: Files = Provide[Container.files], http: httpx.AsyncClient = Provide[Container.http]
    ) -> tuple[bool, bool]:
        async def on_the_loop() -> bool:
            lifecycle = get_runtime().lifecycle
            assert lifecycle is not None
            return asyncio.get_running_loop() is lifecycle.loop and not http.is_closed

        return not files.closed, async_to_sync(on_the_loop)()

    assert report() == (True, True)


class Greet(ResourceCommand):
    help = "Greet, with the resources open."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")

    @inject
    async def handle(  # type: ignore[override]  # django-stubs types handle() as sync
        self, *args: Any, greeting: str = Provide[Container.greeting], **options: Any
    ) -> str:
        return f"{greeting}, {options['name']}"


class DecoratedGreet(BaseCommand):
    """The decorator: an async handle() that type-checks as Django's sync one."""

    @with_resources
    @inject
    async def handle(
        self, *args: Any, greeting: str = Provide[Container.greeting], **options: Any
    ) -> str:
        return f"{greeting}, decorated"


class SyncGreet(ResourceCommand):
    @inject
    def handle(self, *args: Any, files: Files = Provide[Container.files], **options: Any) -> None:
        self.stdout.write(f"files open: {not files.closed}")


def test_resource_commands_run_handle_with_the_resources_open() -> None:
    out = io.StringIO()
    call_command(Greet(), "command", stdout=out)
    assert out.getvalue() == "hello, command\n"
    out = io.StringIO()
    call_command(DecoratedGreet(), stdout=out)
    assert out.getvalue() == "hello, decorated\n"
    out = io.StringIO()
    call_command(SyncGreet(), stdout=out)
    assert out.getvalue() == "files open: True\n"
    with pytest.raises(ResourcesNotStartedError):
        get_container().files()


def test_open_resources_is_the_async_building_block() -> None:
    async def main() -> str:
        async with open_resources():
            return str(get_container().greeting())

    assert asyncio.run(main()) == "hello"


def test_the_resources_command_lists_providers_dependencies_and_start_order() -> None:
    out = io.StringIO()
    call_command("resources", stdout=out)
    lines = [line.split() for line in out.getvalue().splitlines()]
    assert ["Container", "tests.containers.Container"] in lines
    # Annotated to give a str and a Files: types with no default check.
    assert ["1", "greeting", "on", "the", "event", "loop", "-", "none"] in lines
    assert ["1", "files", "in", "a", "worker", "thread", "-", "none"] in lines
    assert ["weather", "Factory", "files,", "http"] in lines
    assert ["config", "Configuration", "-"] in lines

    out = io.StringIO()
    call_command("resources", "--json", stdout=out)
    listing = json.loads(out.getvalue())
    db_pool = next(r for r in listing["resources"] if r["name"] == "db_pool")
    assert db_pool == {
        "name": "db_pool",
        "stage": 1,
        "opens": "on the event loop",
        "depends_on": ["config.application_name", "config.database_url"],
        "health_check": "psycopg_pool.AsyncConnectionPool: SELECT 1",
    }
    http = next(r for r in listing["resources"] if r["name"] == "http")
    assert http["depends_on"] == ["config.upstream_url"]


async def value(name: str) -> AsyncIterator[str]:
    yield name


class Staged(containers.DeclarativeContainer):
    base = providers.Resource(value, "base")
    middle = providers.Resource(value, base)
    top = providers.Resource(value, providers.Factory(str, middle))


@health_check(Staged.top)
def top_is_unhealthy(top: str) -> None:
    raise ConnectionError("top is down")


def test_resources_check_opens_checks_and_names_each_failing_resource(
    install_container: Install,
) -> None:
    install_container(Staged())
    out = io.StringIO()
    call_command("resources", stdout=out)
    rows = [line.split() for line in out.getvalue().splitlines()]
    stages = {row[1]: row[0] for row in rows if row and row[0].isdigit()}
    assert stages == {"base": "1", "middle": "2", "top": "3"}  # through the inline Factory
    assert "tests.integration.test_runner.top_is_unhealthy" in out.getvalue()

    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("resources", "--check", stdout=out)
    assert str(raised.value) == "Health checks failed: top failing: ConnectionError: top is down"
    assert "ConnectionError: top is down" in out.getvalue()

    out = io.StringIO()
    with pytest.raises(CommandError, match="top failing"):
        call_command("resources", "--check", "--json", stdout=out)
    checks = {c["name"]: c["status"] for c in json.loads(out.getvalue())["checks"]}
    assert checks == {"base": "ok", "middle": "ok", "top": "failing"}


def test_resources_check_reports_a_failed_startup_as_a_command_error(
    install_container: Install,
) -> None:
    install_container(BrokenContainer())
    with pytest.raises(CommandError, match=r"Startup failed: resource 'search' raised"):
        call_command("resources", "--check", stdout=io.StringIO())


def test_resources_without_a_container(install_container: Install) -> None:
    install_container(None)
    out = io.StringIO()
    call_command("resources", stdout=out)
    assert out.getvalue().startswith(
        'LIFESPAN_CONTAINER["CONTAINER"] is None: there is no container.\n\nRequest path: '
    )
