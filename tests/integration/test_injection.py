"""@inject on every kind of view, with real resources, through the ASGI app in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
from dependency_injector import containers, providers
from dependency_injector.wiring import Provide as DIProvide
from dependency_injector.wiring import Provider as DIProviderMarker
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container import Provide, _markers, get_container, inject
from lifespan_container._checks import check_injections
from lifespan_container.exceptions import (
    InjectionError,
    ResourcesNotStartedError,
    WrongEventLoopError,
)
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime, get_runtime
from lifespan_container.testing import use_container
from tests import views
from tests.conftest import Registry
from tests.containers import Container
from tests.lifespan_driver import SHUTDOWN_COMPLETE, STARTUP_COMPLETE, Lifespan
from tests.upstream import Upstream


class Served:
    def __init__(self, app: LifespanHandler, container: Any, upstream: Upstream) -> None:
        self.app, self.container, self.upstream = app, container, upstream
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A fresh container as the process's, put back afterwards."""
    with use_container(Container()) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def served(runtime: Runtime) -> AsyncIterator[Served]:
    """The test project's ASGI app with its lifespan running, against a local upstream."""
    async with Upstream() as upstream:
        runtime.container.config.upstream_url.from_value(upstream.url)  # type: ignore[union-attr]
        app = LifespanHandler(runtime)
        lifespan = Lifespan(app)
        assert await lifespan.startup() == STARTUP_COMPLETE
        served = Served(app, runtime.container, upstream)
        async with served.client:
            yield served
        assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
        await lifespan.finish()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/async-function", {"view": "async function", "upstream": {"path": "/async-function"}}),
        ("/sync-function", {"view": "sync function", "files_open": True}),
        ("/factory", {"view": "factory", "upstream": {"path": "/factory"}}),
        ("/class-based", {"view": "class-based", "upstream": {"path": "/class-based"}}),
        ("/sync-class-based", {"view": "sync class-based", "files_open": True}),
        ("/api-view", {"view": "APIView", "files_open": True}),
        ("/viewset/", {"view": "ViewSet.list", "files_open": True}),
        ("/viewset/greeting/", {"view": "ViewSet action", "greeting": "hello"}),
        ("/drf-function", {"view": "api_view", "files_open": True}),
    ],
)
async def test_every_view_kind_receives_its_resources(
    served: Served, path: str, expected: dict[str, Any]
) -> None:
    """Sync and async function, class-based and DRF views get real resources."""
    response = await served.client.get(path)
    assert response.status_code == 200, response.text
    assert response.json() == expected


@pytest.mark.asyncio
async def test_generic_view_method_receives_its_resources(served: Served) -> None:
    response = await served.client.get("/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/files-open/True"


@pytest.mark.asyncio
async def test_markers_by_name_and_configuration_options(served: Served) -> None:
    assert (await served.client.get("/by-name")).text == "hello"
    assert (await served.client.get("/configuration")).text == served.upstream.url


@pytest.mark.asyncio
async def test_sync_view_bridges_to_the_async_client_on_the_lifespan_loop(served: Served) -> None:
    """A sync view's async_to_sync call runs on the loop that opened the client."""
    response = await served.client.get("/sync-bridge")
    assert response.json() == {
        "view": "sync bridge",
        "upstream": {"path": "/sync-bridge"},
        "on_lifespan_loop": True,
    }


@pytest.mark.asyncio
async def test_an_explicit_argument_wins_over_the_marker(served: Served) -> None:
    """Keyword or positional, what the caller passes is what the view gets."""
    request = RequestFactory().get("/")
    fake = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"fake": True})),
        base_url="http://fake",
    )
    async with fake:
        by_keyword = await views.async_function(request, http=fake)
        by_position = await views.async_function(request, fake)
    assert by_keyword.content == by_position.content
    assert b'"fake": true' in by_keyword.content
    assert served.upstream.requests == 0


@pytest.mark.asyncio
async def test_an_overridden_provider_is_injected_instead(served: Served) -> None:
    """A test override (dependency-injector's own) replaces the open resource."""
    fake = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"mocked": r.url.path})),
        base_url="http://fake",
    )
    async with fake:
        with served.container.http.override(providers.Object(fake)):
            response = await served.client.get("/async-function")
    assert response.json()["upstream"] == {"mocked": "/async-function"}
    assert (await served.client.get("/async-function")).json()["upstream"] == {
        "path": "/async-function"
    }


@pytest.mark.asyncio
async def test_an_awaitable_from_a_provider_is_awaited_in_async_views(runtime: Runtime) -> None:
    async def make_greeting() -> str:
        return "from a coroutine"

    @inject
    async def view(greeting: str = Provide[Container.greeting]) -> str:
        return greeting

    with runtime.container.greeting.override(providers.Coroutine(make_greeting)):  # type: ignore[union-attr]
        assert await view() == "from a coroutine"


def test_an_awaitable_in_a_sync_view_is_a_clear_error(runtime: Runtime) -> None:
    async def make_greeting() -> str:
        return "never"

    @inject
    def view(greeting: str = Provide[Container.greeting]) -> str:
        return greeting

    with (
        runtime.container.greeting.override(providers.Coroutine(make_greeting)),  # type: ignore[union-attr]
        pytest.raises(InjectionError, match=r"returned an awaitable, which a sync view cannot"),
    ):
        view()


@pytest.mark.asyncio
async def test_without_the_lifespan_a_view_gets_an_error_not_a_marker(runtime: Runtime) -> None:
    """No placeholder ever reaches the view: it raises before the view runs."""
    request = RequestFactory().get("/")
    with pytest.raises(ResourcesNotStartedError, match="Resource 'http' is not open"):
        await views.async_function(request)


@pytest.mark.asyncio
async def test_sync_test_client_gets_a_clear_error_with_the_lifespan_running(
    served: Served,
) -> None:
    """Django's sync Client runs async views in a new loop: WrongEventLoopError says so."""
    client = Client()
    with pytest.raises(WrongEventLoopError, match="AsyncClient"):
        await asyncio.to_thread(client.get, "/async-function")
    # A sync view under it runs in a thread that cannot reach the lifespan loop.
    with pytest.raises(WrongEventLoopError, match="a thread that cannot reach that loop"):
        await asyncio.to_thread(client.get, "/sync-bridge")
    # Sync resources are not bound to a loop and work under it.
    response = await asyncio.to_thread(client.get, "/sync-function")
    assert response.json() == {"view": "sync function", "files_open": True}


def test_swapping_the_runtime_resolves_markers_again(runtime: Runtime) -> None:
    @inject
    def view(config: Any = Provide[Container.config]) -> Any:
        return config

    assert view() == {}
    other = Container()
    other.config.from_dict({"upstream_url": "http://other"})
    with use_container(other):
        assert view() == {"upstream_url": "http://other"}


# -- decoration-time and call-time errors ------------------------------------------------


def test_inject_without_markers_is_refused_at_decoration() -> None:
    with pytest.raises(InjectionError, match="found no Provide"):

        @inject
        def view(request: Any) -> None: ...


def test_inject_on_a_class_is_refused() -> None:
    with pytest.raises(InjectionError, match="decorate the view's methods"):
        inject(views.ClassBased)


def test_provide_takes_providers_or_names() -> None:
    with pytest.raises(InjectionError, match="takes a provider of the container"):
        Provide[42]  # type: ignore[call-overload]


def test_dependency_injector_provide_markers_work_too(runtime: Runtime) -> None:
    """Markers written for dependency-injector's wiring are understood (migration)."""

    @inject
    def view(config: Any = DIProvide[Container.config]) -> Any:
        return config

    assert view() == {}


def test_other_dependency_injector_markers_are_refused() -> None:
    with pytest.raises(InjectionError, match="not supported"):

        @inject
        def view(config: Any = DIProviderMarker[Container.config]) -> Any: ...


def test_two_markers_on_one_parameter_are_refused() -> None:
    with pytest.raises(InjectionError, match="more than one Provide marker"):

        @inject
        def view(
            config: Annotated[Any, Provide[Container.config]] = Provide[Container.files],
        ) -> Any: ...


class Elsewhere(containers.DeclarativeContainer):
    other = providers.Object("not in the configured container")


def test_unknown_provider_is_e101_at_check_and_an_error_at_the_call(
    runtime: Runtime, registry: Registry
) -> None:
    """A marker naming a provider the container lacks: the check and the call both say so."""
    registry.clear()  # the check sees this test's two functions, whatever others decorated

    @inject
    def stray(request: Any, other: str = Provide[Elsewhere.other]) -> str:
        return other

    @inject
    def misspelt(request: Any, http: Any = Provide["htp"]) -> Any:
        return http

    errors = [e for e in check_injections() if e.id == "lifespan_container.E101"]
    assert [e.obj for e in errors] == [
        f"{__name__}.{stray.__qualname__}",
        f"{__name__}.{misspelt.__qualname__}",
    ]
    assert "parameter 'other'" in errors[0].msg
    assert "names no provider of the container tests.containers.Container" in errors[0].msg
    with pytest.raises(InjectionError, match=r"Provide\['htp'\] on parameter 'http'"):
        misspelt(None)


def test_routed_view_with_markers_but_no_inject_is_e102(settings: SettingsWrapper) -> None:
    """A view that would receive the marker itself is reported, by name."""
    settings.ROOT_URLCONF = "tests.urls_unwired"
    errors = [e for e in check_injections() if e.id == "lifespan_container.E102"]
    assert sorted(str(e.obj) for e in errors) == [
        "tests.urls_unwired.UnwiredClass.get",
        "tests.urls_unwired.unwired",
        "tests.urls_unwired.unwired_api",
    ]
    with pytest.raises(SystemCheckError, match=r"lifespan_container\.E102"):
        call_command("check")


PROJECT_VIEWS = [
    "tests.views.ClassBased.get",
    "tests.views.DRFAPIView.get",
    "tests.views.DRFViewSet.greeting",
    "tests.views.DRFViewSet.list",
    "tests.views.Redirect.get_redirect_url",
    "tests.views.SyncClassBased.get",
    "tests.views.async_function",
    "tests.views.by_name",
    "tests.views.configuration",
    "tests.views.database_now",
    "tests.views.drf_function",
    "tests.views.factory",
    "tests.views.sync_bridge",
    "tests.views.sync_function",
    "tests.views.users",
]


def test_the_project_views_pass_the_checks(registry: Registry) -> None:
    """Checked are exactly the project's @inject views (not what other tests decorated)."""
    registry.replace([spec for spec in registry if spec.module == views.__name__])
    assert sorted(spec.where for spec in registry) == PROJECT_VIEWS
    assert check_injections() == []


def test_get_container_is_the_runtime_container(runtime: Runtime) -> None:
    assert get_container() is runtime.container
    assert get_runtime() is runtime


def test_markers_describe_themselves() -> None:
    assert repr(Provide) == "Provide"
    assert repr(Provide["infra.db"]) == "Provide['infra.db']"
    assert repr(Provide[Container.greeting]) == "Provide[Resource(greeting)]"
    assert repr(Provide[Container.config.upstream_url]) == "Provide[config.upstream_url]"
    assert repr(Provide[Container.config]) == "Provide[Configuration]"


def test_without_a_container_inject_says_how_to_configure_one(
    registry: Registry,
) -> None:
    @inject
    def view(greeting: str = Provide[Container.greeting]) -> str:
        return greeting

    with use_container(None):
        with pytest.raises(InjectionError, match=r'\["CONTAINER"\] is None'):
            view()
        [error] = [e for e in check_injections() if str(e.obj).endswith(view.__qualname__)]
        assert error.id == "lifespan_container.E101"
        assert 'LIFESPAN_CONTAINER["CONTAINER"] is None' in error.msg


def test_a_positional_argument_wins_in_sync_views_too(runtime: Runtime) -> None:
    @inject
    def view(request: Any, files: Any = Provide[Container.files]) -> Any:
        return files

    assert view(None, "given") == "given"
    assert view(None, files="given") == "given"


def test_dependency_injector_markers_with_modifiers_are_refused() -> None:
    from dependency_injector.wiring import as_int  # noqa: PLC0415

    with_modifier = DIProvide(Container.config.port, as_int())  # type: ignore[call-arg]
    with pytest.raises(InjectionError, match="with a modifier"):

        @inject
        def view(port: Any = with_modifier) -> None:
            pass


def test_annotations_that_do_not_resolve_yet_are_read_later(runtime: Runtime) -> None:
    """A forward reference in an annotation does not hide a default marker."""

    @inject
    def view(greeting: NotDefinedYet = Provide[Container.config]) -> Any:  # type: ignore[name-defined]  # noqa: F821
        return greeting

    assert view() == {}


class Outer(containers.DeclarativeContainer):
    inner = providers.Container(Container)


def test_providers_of_nested_containers_resolve_by_path() -> None:
    outer = Outer()
    assert _markers.find_provider(outer, Outer.inner.greeting) is outer.inner.greeting
    assert _markers.find_provider(outer, "inner.greeting") is outer.inner.greeting
    assert _markers.find_provider(outer, "inner.missing") is None
    assert _markers.find_provider(outer, Elsewhere.other) is None


def test_has_markers_is_false_for_what_it_cannot_inspect() -> None:
    assert not _markers.has_markers(42)
    assert not _markers.has_markers(print)  # no signature in some builds; never raises

    def two(x: Annotated[Any, Provide["a"]] = Provide["b"]) -> None: ...

    assert not _markers.has_markers(two)  # two markers: an error, reported elsewhere


def test_a_marker_in_an_annotation_that_cannot_be_evaluated_is_refused() -> None:
    """With `from __future__ import annotations`, a marker in a string needs its names."""

    def view(http: "Annotated[Missing, Provide[Container.http]]") -> None: ...  # type: ignore[name-defined]  # noqa: F821, UP037

    with pytest.raises(InjectionError, match="write the marker as the default"):
        inject(view)


def test_an_injected_view_in_another_loop_of_the_same_thread_is_refused(
    runtime: Runtime,
) -> None:
    """Resources opened in loop A, loop A stopped, a view run in loop B (same thread)."""
    assert runtime.lifecycle is not None
    loop_a = asyncio.new_event_loop()
    try:
        assert loop_a.run_until_complete(runtime.lifecycle.start()) == []
        request = RequestFactory().get("/")
        with pytest.raises(WrongEventLoopError, match="another event loop"):
            asyncio.run(views.async_function(request))
    finally:
        assert loop_a.run_until_complete(runtime.lifecycle.stop(10)) == []
        loop_a.close()


def test_a_positional_only_marker_is_refused_at_decoration() -> None:
    with pytest.raises(InjectionError, match="positional-only"):

        @inject
        def view(greeting: str = Provide[Container.greeting], /) -> str:
            return greeting


def test_a_marker_used_as_a_value_says_inject_is_missing() -> None:
    """A helper without @inject gets the marker: using it says what to fix."""
    from lifespan_container.exceptions import MarkerUsedError  # noqa: PLC0415

    def helper(http: Any = Provide[Container.http]) -> Any:
        return http.get("/")

    with pytest.raises(MarkerUsedError, match=r"not decorated with @lifespan_container\.inject"):
        helper()
    assert not hasattr(Provide[Container.http], "closed")


def test_under_wsgi_a_resource_error_points_to_runasgi(runtime: Runtime) -> None:
    """runserver serves WSGI, as Django's sync Client does: no lifespan ran, and the
    error names the development command that has one."""
    with pytest.raises(ResourcesNotStartedError, match=r"python manage\.py runasgi"):
        Client().get("/sync-function")
