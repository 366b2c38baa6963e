"""lifespan_container.testing: the real lifespan around test clients, and overrides."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container import get_container
from lifespan_container.exceptions import (
    LifespanContainerError,
    ShutdownFailedError,
    StartupFailedError,
)
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.signals import asgi_shutdown, asgi_startup
from lifespan_container.testing import (
    Overrides,
    lifespan,
    lifespan_client,
    override,
    use_container,
    with_lifespan,
)
from tests.conftest import Connect
from tests.containers import OPENED_SEARCH, BrokenContainer, Container
from tests.upstream import Upstream

pytestmark = pytest.mark.asyncio


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A fresh container as the process's (its http client has no upstream)."""
    with use_container(Container()) as runtime:
        yield runtime


@pytest.fixture
def broken_runtime() -> Iterator[Runtime]:
    with use_container(BrokenContainer()) as runtime:
        OPENED_SEARCH.clear()
        yield runtime


def app_for(runtime: Runtime) -> LifespanHandler:
    return LifespanHandler(runtime)


def container_of(runtime: Runtime) -> Any:
    """The runtime's container, with its providers as attributes (typed loosely)."""
    assert runtime.container is not None
    return runtime.container


class FakePool:
    """What a test puts in place of a PostgreSQL pool."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[FakePool]:
        yield self

    async def execute(self, query: str) -> FakePool:
        self.queries.append(query)
        return self

    async def fetchone(self) -> tuple[str, str]:
        return ("fake now", "fake pool")


async def test_lifespan_opens_the_resources_for_the_block_and_closes_them(
    runtime: Runtime,
) -> None:
    """Inside the block the resources are open in this loop; after it they are closed."""
    container = container_of(runtime)
    async with lifespan(app_for(runtime)) as state:
        assert state == {}
        assert container.greeting() == "hello"
        files = container.files()
        assert runtime.lifecycle is not None
        assert runtime.lifecycle.loop is asyncio.get_running_loop()
    assert files.closed
    assert not runtime.lifecycle.started


async def test_lifespan_defaults_to_the_project_application(runtime: Runtime) -> None:
    async with lifespan():
        assert get_container().greeting() == "hello"


async def test_a_lifespan_object_is_entered_once(runtime: Runtime) -> None:
    running, phases = lifespan(), []
    async with running:
        with pytest.raises(RuntimeError, match="running already"):
            await running.__aenter__()
        phases.append(runtime.phase)
    phases.append(runtime.phase)
    assert phases == ["serving", "stopped"]


async def test_failed_startup_raises_with_the_servers_message(broken_runtime: Runtime) -> None:
    """The exception carries the `lifespan.startup.failed` message, naming the provider."""
    with pytest.raises(StartupFailedError) as raised:
        async with lifespan(app_for(broken_runtime)):
            pytest.fail("the block must not run")  # pragma: no cover
    assert str(raised.value) == (
        "Startup failed: resource 'search' raised ConnectionRefusedError: "
        "search cluster unreachable."
    )
    assert OPENED_SEARCH == ["search"]
    assert not container_of(broken_runtime).files.initialized  # rolled back


async def test_an_app_without_lifespan_support_is_a_clear_error() -> None:
    """Vanilla Django raises on the lifespan scope: the helper says what to pass instead."""
    with pytest.raises(LifespanContainerError, match="does not speak the ASGI lifespan"):
        async with lifespan(ASGIHandler()):
            pytest.fail("the block must not run")  # pragma: no cover


async def test_an_app_that_never_answers_is_bounded(settings: SettingsWrapper) -> None:
    """The helper stops waiting after the configured timeouts plus a margin."""
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": None,
        "STARTUP_TIMEOUT": 0.05,
        "SHUTDOWN_TIMEOUT": 0.05,
    }
    never = asyncio.Event()

    async def silent(scope: Any, receive: Any, send: Any) -> None:
        await never.wait()

    with pytest.raises(LifespanContainerError, match=r"did not answer 'lifespan\.startup'"):
        async with lifespan(silent):
            pytest.fail("the block must not run")  # pragma: no cover


async def test_a_failing_block_still_shuts_down(runtime: Runtime) -> None:
    container = container_of(runtime)
    opened: list[Any] = []

    async def failing_test() -> None:
        async with lifespan(app_for(runtime)):
            opened.append(container.files())
            raise KeyError("from the test")

    with pytest.raises(KeyError, match="from the test"):
        await failing_test()
    assert opened[0].closed


async def test_a_failing_shutdown_raises(runtime: Runtime, connect: Connect) -> None:
    async def fail(**kwargs: Any) -> None:
        raise RuntimeError("flush failed")

    connect(asgi_shutdown, fail)
    with pytest.raises(ShutdownFailedError, match="flush failed"):
        async with lifespan(app_for(runtime)):
            pass


async def test_a_failing_shutdown_after_a_failing_block_is_logged(
    runtime: Runtime, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """The test's own error goes on; the shutdown failure is in the log."""

    async def fail(**kwargs: Any) -> None:
        raise RuntimeError("flush failed")

    connect(asgi_shutdown, fail)
    with pytest.raises(KeyError):
        async with lifespan(app_for(runtime)):
            raise KeyError("from the test")
    assert "The lifespan shutdown after a failed test failed too" in caplog.text


async def test_lifespan_client_passes_a_copy_of_the_state_to_each_request(
    runtime: Runtime, connect: Connect
) -> None:
    """A startup receiver fills the state; every request sees it, none can change it."""

    async def remember(state: dict[str, Any], **kwargs: Any) -> None:
        state["build"] = "42"

    connect(asgi_startup, remember)
    async with lifespan_client(app_for(runtime)) as client:
        first = (await client.get("/lifespan-state")).json()
        second = (await client.get("/lifespan-state")).json()
    assert first == second == {"state": {"build": "42"}}


async def test_django_async_client_works_with_the_lifespan_running(runtime: Runtime) -> None:
    """Django's AsyncClient runs views in this loop, where the resources are open."""
    container = container_of(runtime)
    async with Upstream() as upstream:
        container.config.upstream_url.from_value(upstream.url)
        async with lifespan(app_for(runtime)):
            response = await AsyncClient().get("/async-function")
    assert response.json() == {"view": "async function", "upstream": {"path": "/async-function"}}


async def test_override_replaces_a_resource_and_it_is_never_opened(
    broken_runtime: Runtime,
) -> None:
    """An overridden resource that would fail to open is not opened; undone on exit."""
    container = container_of(broken_runtime)
    with override(BrokenContainer.search, "fake search"):
        async with lifespan(app_for(broken_runtime)):
            assert container.search() == "fake search"
    assert OPENED_SEARCH == []
    assert container.search.last_overriding is not None  # only the library's guard is left
    with pytest.raises(StartupFailedError):
        async with lifespan(app_for(broken_runtime)):
            pass  # pragma: no cover


async def test_override_is_undone_when_the_block_raises(runtime: Runtime) -> None:
    container = container_of(runtime)
    before = container.greeting.overridden
    with pytest.raises(ValueError, match="boom"), override("greeting", "fake"):
        raise ValueError("boom")
    assert container.greeting.overridden == before


async def test_override_as_a_decorator(runtime: Runtime) -> None:
    container = container_of(runtime)

    @override(Container.greeting, "async fake")
    async def async_test() -> str:
        async with lifespan(app_for(runtime)):
            return str(container.greeting())

    @override(Container.config, providers.Object({"upstream_url": "http://fake"}))
    def sync_test() -> Any:
        return container.config()

    assert await async_test() == "async fake"
    assert sync_test() == {"upstream_url": "http://fake"}
    assert container.config() == {}


async def test_override_refuses_unknown_providers_and_resources(runtime: Runtime) -> None:
    unknown = override("nope", 1)
    with pytest.raises(LifespanContainerError, match="has no such provider"):
        unknown.__enter__()
    with pytest.raises(LifespanContainerError, match=r"not a providers\.Resource"):
        override(Container.greeting, providers.Resource(dict))


async def test_overrides_are_undone_together_newest_first(runtime: Runtime) -> None:
    container = container_of(runtime)
    applied = Overrides()
    applied(Container.greeting, "first")
    applied(Container.greeting, "second")
    applied(Container.files, "fake files")
    async with lifespan(app_for(runtime)):
        assert (container.greeting(), container.files()) == ("second", "fake files")
    applied.reset()
    async with lifespan(app_for(runtime)):
        assert container.greeting() == "hello"


async def test_with_lifespan_runs_an_async_test_inside_the_lifespan(runtime: Runtime) -> None:
    container = container_of(runtime)

    @with_lifespan(application=app_for(runtime))
    async def a_test(expected: str) -> str:
        assert container.greeting() == expected
        return "ran"

    assert await a_test("hello") == "ran"
    assert not container.greeting.initialized


@pytest.mark.services
async def test_real_pool_through_httpx_and_django_clients(
    runtime: Runtime, postgres_dsn: str
) -> None:
    """A real psycopg pool, through the in-process httpx client and Django's AsyncClient."""
    container = container_of(runtime)
    name = f"lc-testing-{uuid.uuid4().hex[:8]}"
    container.config.from_dict({"database_url": postgres_dsn, "application_name": name})
    expected = {"answer": "now", "application_name": name}
    async with lifespan_client(app_for(runtime)) as client:
        assert (await client.get("/database-now")).json() == expected
        assert (await AsyncClient().get("/database-now")).json() == expected


async def test_pool_overridden_by_a_fake_is_never_opened(runtime: Runtime) -> None:
    """The pool points at a closed port: if it were opened, startup would fail."""
    container = container_of(runtime)
    container.config.from_dict({"database_url": "postgresql://127.0.0.1:1/none"})
    fake = FakePool()
    with override(Container.db_pool, fake):
        async with lifespan_client(app_for(runtime)) as client:
            via_httpx = (await client.get("/database-now")).json()
            via_django = (await AsyncClient().get("/database-now")).json()
    assert via_httpx == via_django == {"answer": "fake now", "application_name": "fake pool"}
    assert len(fake.queries) == 2


async def test_client_options_reach_httpx(runtime: Runtime) -> None:
    async with lifespan_client(app_for(runtime), headers={"x-test": "1"}) as client:
        assert isinstance(client, httpx.AsyncClient)
        assert client.headers["x-test"] == "1"
