"""Request scopes where our handler does not serve: Django's test clients, direct calls.

``@inject`` opens a scope bound to the request, and Django closes it with the
response (``request.close`` is one of the final response's closers).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from dependency_injector import containers, providers
from dependency_injector.wiring import Closing
from dependency_injector.wiring import Provide as DIProvide
from django.core import checks
from django.core.exceptions import RequestAborted
from django.core.management import call_command
from django.test import AsyncClient, Client

from lifespan_container import CurrentRequest, Provide, RequestResource, inject, request_scope
from lifespan_container.exceptions import InjectionError, RequestScopeError
from lifespan_container.handler import LifespanHandler
from lifespan_container.runner import run
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan, use_container
from tests.conftest import Registry
from tests.lifespan_driver import WAIT
from tests.request_scope_app import Record, ScopedContainer, Value, make_container, make_views


def is_open(value: Value) -> bool:
    return value.open


CLOSED_NORMALLY = ["open outer", "open inner", "close inner", "close outer"]


@pytest.fixture
def record() -> Record:
    return Record()


@pytest.fixture
def runtime(record: Record, registry: Registry, settings: Any) -> Iterator[Runtime]:
    settings.ROOT_URLCONF = "tests.request_scope_app"
    make_views()
    with use_container(make_container(record)) as runtime:
        yield runtime


def test_the_sync_client_closes_a_sync_resource_with_the_response(
    runtime: Runtime, record: Record
) -> None:
    response = Client().get("/sync_view/")
    assert response.json()["open"] is True
    assert record.names() == ["open sync", "close sync"]
    opened_in, closed_in = record.threads["sync"]
    assert opened_in == closed_in


def test_the_sync_client_refuses_async_resources_on_its_throwaway_loop(
    runtime: Runtime, record: Record
) -> None:
    """Django's sync Client runs an async view on a loop that ends before the response."""
    client = Client(raise_request_exception=True)
    with pytest.raises(RequestScopeError, match="event loop made for this one call"):
        client.get("/nested/")
    assert record.names() == []


def test_an_async_resource_in_a_sync_view_is_refused_where_no_loop_serves(
    runtime: Runtime, record: Record
) -> None:
    client = Client(raise_request_exception=True)
    with pytest.raises(RequestScopeError, match="no event loop serves the request"):
        client.get("/sync_view_async_resource/")
    assert record.names() == []


def test_inside_the_lifespan_the_sync_client_opens_and_closes_async_resources(
    runtime: Runtime, record: Record
) -> None:
    """``with lifespan()``: the async view and its resources run on the lifespan's loop,
    in an async view and through a sync view alike."""
    with lifespan(LifespanHandler(runtime)):
        client = Client(raise_request_exception=True)
        assert client.get("/nested/").json()["same"] is True
        assert record.names() == CLOSED_NORMALLY
        record.events.clear()
        assert client.get("/sync_view_async_resource/").status_code == 200
        assert record.names() == ["open outer", "close outer"]


def test_a_stream_never_read_closes_its_resources_before_the_lifespans(
    runtime: Runtime, record: Record, caplog: pytest.LogCaptureFixture
) -> None:
    """A test that never reads a streamed response: the lifespan's end closes the
    request's resources (as a request the client left), with a warning, first."""
    with lifespan(LifespanHandler(runtime)):
        response = Client().get("/stream/")
        assert response.status_code == 200
        assert record.names() == ["open outer", "open inner"]
    assert record.names() == ["open outer", "open inner", "close inner", "close outer"]
    assert isinstance(record.errors["inner"], RequestAborted)
    assert "The response to '/stream/' was never read to its end nor closed" in caplog.text
    assert not runtime.open_scopes


@pytest.mark.asyncio
async def test_an_async_stream_never_read_closes_its_resources_before_the_lifespans(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan(LifespanHandler(runtime)):
        response = await AsyncClient().get("/stream/")
        assert response.streaming
        assert record.names() == ["open outer", "open inner"]
    assert record.names() == ["open outer", "open inner", "close inner", "close outer"]
    assert not runtime.open_scopes


def test_the_sync_client_closes_a_stream_once_it_is_consumed(
    runtime: Runtime, record: Record
) -> None:
    response = Client().get("/sync_stream/")
    assert record.names() == ["open sync"]  # the stream is not consumed yet
    assert b"".join(response.streaming_content) == b"0:True;1:True;2:True;"  # type: ignore[attr-defined]
    assert record.names() == ["open sync", "close sync"]


def test_a_failing_view_under_the_sync_client_throws_its_exception_in(
    runtime: Runtime, record: Record
) -> None:
    response = Client(raise_request_exception=False).get("/sync_fails/")
    assert response.status_code == 500
    assert isinstance(record.errors["sync"], ValueError)


@pytest.mark.asyncio
async def test_the_async_client_closes_with_the_response(runtime: Runtime, record: Record) -> None:
    response = await AsyncClient().get("/nested/")
    assert response.json()["same"] is True
    assert record.names() == CLOSED_NORMALLY


def test_the_async_client_in_an_async_testcase_method_opens_and_closes_async_resources(
    runtime: Runtime, record: Record
) -> None:
    """Django runs an async ``TestCase`` method with ``async_to_sync``, in a loop made
    for the whole test: ``self.async_client``'s requests end within it."""

    async def test_method() -> Any:
        response = await AsyncClient().get("/nested/")
        return response.json()["same"]

    assert async_to_sync(test_method)() is True
    assert record.names() == CLOSED_NORMALLY


@pytest.mark.asyncio
async def test_the_async_client_closes_an_async_stream_after_its_last_chunk(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan():
        response = await AsyncClient().get("/stream/")
        chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[attr-defined]
        assert b"".join(chunks) == b"0:True;1:True;2:True;"
    # The lifespan's exit waited for the close the client started on this loop.
    assert record.names() == CLOSED_NORMALLY


@pytest.mark.asyncio
async def test_a_failing_view_under_the_async_client_throws_its_exception_in(
    runtime: Runtime, record: Record
) -> None:
    response = await AsyncClient(raise_request_exception=False).get("/fails/")
    assert response.status_code == 500
    assert isinstance(record.errors["outer"], ValueError)


def test_a_request_scoped_provider_outside_a_request_is_a_clear_error(runtime: Runtime) -> None:
    container: Any = runtime.container
    with pytest.raises(RequestScopeError, match=r"outside a request.*request_scope\(\)"):
        container.sync()
    with pytest.raises(RequestScopeError, match=r"CurrentRequest\(\) was used outside a request"):
        container.request()


@pytest.mark.asyncio
async def test_request_scope_opens_a_scope_for_a_service_called_directly(
    runtime: Runtime, record: Record, registry: Registry
) -> None:
    @inject
    async def service(value: Value = Provide[ScopedContainer.plain]) -> Value:
        return value

    with pytest.raises(RequestScopeError, match="was not called with a request"):
        await service()
    async with request_scope():
        value = await service()
        assert value is await service()
        assert is_open(value)
        container: Any = runtime.container
        with pytest.raises(RequestScopeError, match=r"CurrentRequest\(\) was used outside"):
            container.request()
    assert not is_open(value)
    assert record.names() == ["open plain", "close plain"]


def test_the_sync_request_scope_opens_sync_resources(
    runtime: Runtime, record: Record, registry: Registry
) -> None:
    @inject
    def service(value: Value = Provide[ScopedContainer.sync]) -> Value:
        return value

    with request_scope():
        value = service()
        assert is_open(value)
    assert not is_open(value)
    assert record.names() == ["open sync", "close sync"]


def test_a_service_whose_request_scoped_values_are_all_overridden_needs_no_scope(
    runtime: Runtime, registry: Registry
) -> None:
    @inject
    def service(value: Value = Provide[ScopedContainer.sync]) -> Value:
        return value

    fake = Value("fake", "")
    container: Any = runtime.container
    with container.sync.override(providers.Object(fake)):
        assert service() is fake


def test_closing_markers_point_to_request_resource(registry: Registry) -> None:
    with pytest.raises(InjectionError, match="declare it as a RequestResource"):

        @inject
        def view(request: Any, value: Any = Closing[DIProvide[ScopedContainer.sync]]) -> None: ...


async def _generator(value: object) -> Any:
    yield value


class AppScopedOnRequest(containers.DeclarativeContainer):
    request = CurrentRequest()
    conn = RequestResource(_generator, value=1)
    cached: providers.Singleton[dict[str, Any]] = providers.Singleton(dict, conn=conn)
    through: providers.Factory[dict[str, Any]] = providers.Factory(dict, conn=conn)
    pool = providers.Resource(_generator, value=through)
    per_request: providers.Factory[dict[str, Any]] = providers.Factory(
        dict, request=request, conn=conn
    )
    remembers_request: providers.Singleton[dict[str, Any]] = providers.Singleton(
        dict, request=request
    )


def test_the_checks_report_app_scoped_providers_that_depend_on_a_request(
    registry: Registry,
) -> None:
    from lifespan_container._checks import check_request_scope  # noqa: PLC0415

    with use_container(AppScopedOnRequest):
        found = {(message.id, message.obj): message.msg for message in check_request_scope()}
    assert set(found) == {
        ("lifespan_container.E015", "cached"),
        ("lifespan_container.E015", "pool"),
        ("lifespan_container.E016", "remembers_request"),
    }
    assert "the request-scoped 'conn'" in found["lifespan_container.E015", "cached"]
    assert "through pool -> through" in found["lifespan_container.E015", "pool"]
    assert "CurrentRequest()" in found["lifespan_container.E016", "remembers_request"]


def test_the_cleanup_timeout_is_validated_like_the_others(settings: Any) -> None:
    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, "REQUEST_CLEANUP_TIMEOUT": 0}
    found = [message for message in checks.run_checks() if str(message.id).endswith("E014")]
    assert len(found) == 1
    assert "REQUEST_CLEANUP_TIMEOUT" in found[0].msg


def test_the_resources_command_lists_request_scoped_providers_apart(settings: Any) -> None:
    settings.LIFESPAN_CONTAINER = {
        **settings.LIFESPAN_CONTAINER,
        "CONTAINER": "tests.request_scope_app.ScopedContainer",
    }
    with use_container(make_container(Record())):
        out = io.StringIO()
        call_command("resources", "--json", stdout=out)
        text = io.StringIO()
        call_command("resources", stdout=text)
    listing = json.loads(out.getvalue())
    scoped = {entry["name"]: entry for entry in listing["request_scoped"]}
    assert scoped["inner"] == {
        "name": "inner",
        "kind": "RequestResource",
        "depends_on": ["outer", "record"],
    }
    assert scoped["request"]["kind"] == "CurrentRequest"
    assert "inner" not in {entry["name"] for entry in listing["providers"]}
    assert "pair" in {entry["name"] for entry in listing["providers"]}
    assert "Request-scoped (opened in each request that uses them" in text.getvalue()


def test_pytest_djangos_client_fixture_closes_with_the_response(
    runtime: Runtime, record: Record, client: Client
) -> None:
    assert client.get("/sync_view/").status_code == 200
    assert record.names() == ["open sync", "close sync"]


@pytest.mark.asyncio
async def test_pytest_djangos_async_client_fixture_closes_with_the_response(
    runtime: Runtime, record: Record, async_client: AsyncClient
) -> None:
    assert (await async_client.get("/nested/")).status_code == 200
    assert record.names() == CLOSED_NORMALLY


@pytest.mark.django_db  # response.close() sends request_finished: Django's
# close_old_connections then checks this thread's connection (open after a db test)
def test_a_view_called_with_a_request_factory_request_closes_with_the_response(
    runtime: Runtime, record: Record, rf: Any
) -> None:
    from tests.request_scope_app import urlpatterns  # noqa: PLC0415

    view = next(
        pattern.callback
        for pattern in urlpatterns
        if pattern.name is None and str(pattern.pattern) == "sync_view/"
    )
    response = view(rf.get("/sync_view/"))
    assert record.names() == ["open sync"]
    response.close()
    assert record.names() == ["open sync", "close sync"]


def test_run_opens_request_scoped_resources_in_a_scope_of_its_own(
    runtime: Runtime, record: Record, registry: Registry
) -> None:
    @inject
    async def job(value: Value = Provide[ScopedContainer.plain]) -> Value:
        return value

    async def main() -> tuple[Value, bool]:
        async with request_scope():
            value = await job()
            return value, is_open(value)

    value, was_open = run(main())
    assert was_open
    assert not is_open(value)
    assert record.names() == ["open plain", "close plain"]


@pytest.mark.asyncio
async def test_the_async_client_closes_a_sync_resource_in_the_views_thread(
    runtime: Runtime, record: Record
) -> None:
    response = await AsyncClient().get("/sync_view/")
    opened_in, closed_in = record.threads["sync"]
    assert opened_in == closed_in == response.json()["thread"]
    assert record.names() == ["open sync", "close sync"]


def test_a_view_called_directly_that_raises_closes_its_scope_with_the_error(
    runtime: Runtime, record: Record, rf: Any
) -> None:
    from tests.request_scope_app import urlpatterns  # noqa: PLC0415

    view = next(p.callback for p in urlpatterns if str(p.pattern) == "sync_fails/")
    with pytest.raises(ValueError, match="the sync view failed"):
        view(rf.get("/sync_fails/"))
    assert record.names() == ["open sync", "close sync"]
    assert isinstance(record.errors["sync"], ValueError)


@pytest.mark.asyncio
async def test_the_sync_request_scope_refuses_async_resources(
    runtime: Runtime, record: Record, registry: Registry
) -> None:
    @inject
    async def service(value: Value = Provide[ScopedContainer.plain]) -> Value:
        return value

    with request_scope(), pytest.raises(RequestScopeError, match="sync values only"):
        await service()
    assert record.names() == []


def test_a_factory_that_needs_only_the_request_works_under_the_sync_client(
    runtime: Runtime,
) -> None:
    response = Client().get("/audits/")
    assert response.status_code == 200
    assert response.content == b"/audits/"


def test_a_django_rest_framework_view_under_the_sync_client(
    runtime: Runtime, record: Record
) -> None:
    response = Client().get("/drf_view/")
    assert response.json() == {"open": True}
    assert record.names() == ["open sync", "close sync"]


def test_providers_called_in_a_scope_open_sync_values_and_refuse_unopened_async_ones(
    runtime: Runtime, record: Record
) -> None:
    container: Any = runtime.container
    scope = request_scope()
    with scope:
        value = container.sync()
        assert value is container.sync()
        with pytest.raises(RequestScopeError, match="'plain' is async and not open yet"):
            container.plain()
    assert record.names() == ["open sync", "close sync"]
    with pytest.raises(RequestScopeError, match="can be entered once"), scope:
        pass  # pragma: no cover


@pytest.mark.asyncio
async def test_a_sync_view_that_raises_under_the_async_client_closes_in_its_thread(
    runtime: Runtime, record: Record, settings: Any
) -> None:
    # A cleanup limit no sibling could reach: a close that waited for it would stall.
    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, "REQUEST_CLEANUP_TIMEOUT": 3600}
    async with asyncio.timeout(WAIT):
        response = await AsyncClient(raise_request_exception=False).get("/sync_fails/")
    assert response.status_code == 500
    assert record.names() == ["open sync", "close sync"]
    opened_in, closed_in = record.threads["sync"]
    assert opened_in == closed_in
    assert isinstance(record.errors["sync"], ValueError)
