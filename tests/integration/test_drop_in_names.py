"""django-asgi-lifespan's names: the middleware, the test client, the aliases and modules."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.test import AsyncClient, RequestFactory

from lifespan_container.exceptions import LifespanContainerError
from lifespan_container.handler import LifespanHandler
from lifespan_container.middleware import AsyncMiddleware, LifespanStateMiddleware
from lifespan_container.register import register_lifespan_manager, registered_managers
from lifespan_container.testing import LifespanAwareAsyncClient
from tests.lifespan_driver import http_scope


@pytest.fixture(autouse=True)
def _registry() -> Iterator[None]:
    saved = list(registered_managers)
    yield
    registered_managers.clear()
    for factory in saved:
        registered_managers.add(factory)


@contextlib.asynccontextmanager
async def greeting() -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello"}


def asgi_request(state: dict[str, Any] | None) -> ASGIRequest:
    scope = http_scope("/hello")
    if state is not None:
        scope["state"] = state
    return ASGIRequest(scope, io.BytesIO())


def respond(request: Any) -> HttpResponse:
    return HttpResponse("ok")


async def respond_async(request: Any) -> HttpResponse:
    return HttpResponse("ok")


@pytest.mark.asyncio
async def test_the_async_middleware_sets_the_requests_state() -> None:
    """In an async stack, ``request.state`` is the scope's state itself."""
    middleware = LifespanStateMiddleware(respond_async)
    assert iscoroutinefunction(middleware)
    state = {"greeting": "hello"}
    request = asgi_request(state)
    response = await middleware(request)
    assert response.status_code == 200
    assert request.state is state  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_the_async_middleware_gives_an_empty_dict_without_a_state() -> None:
    """No ``state`` in the scope (daphne, a server without it): ``{}``, never ``KeyError``."""
    request = asgi_request(None)
    await LifespanStateMiddleware(respond_async)(request)
    assert request.state == {}  # type: ignore[attr-defined]


def test_the_sync_middleware_sets_the_state_and_an_empty_dict_under_wsgi() -> None:
    """In a sync stack too (theirs is async only); a WSGI request gets ``{}``."""
    middleware = LifespanStateMiddleware(respond)
    assert not iscoroutinefunction(middleware)
    state = {"greeting": "hello"}
    request = asgi_request(state)
    assert middleware(request).status_code == 200
    assert request.state is state  # type: ignore[attr-defined]
    wsgi = RequestFactory().get("/hello")
    middleware(wsgi)
    assert wsgi.state == {}  # type: ignore[attr-defined]
    assert AsyncMiddleware is LifespanStateMiddleware
    assert LifespanStateMiddleware.sync_capable
    assert LifespanStateMiddleware.async_capable


@pytest.mark.asyncio
async def test_the_aware_client_passes_the_same_state_in_every_request() -> None:
    """``LifespanAwareAsyncClient(state=...)`` puts that dict into each request's scope."""
    state = {"greeting": "hello"}
    client = LifespanAwareAsyncClient(state=state)
    assert isinstance(client, AsyncClient)
    assert client._base_scope(path="/state")["state"] is state
    for _ in range(2):
        response = await client.get("/state")
        assert json.loads(response.content) == {"state": ["greeting"]}
    assert LifespanAwareAsyncClient()._base_scope(path="/")["state"] == {}


@pytest.mark.asyncio
async def test_the_aware_client_runs_the_real_lifespan_when_entered() -> None:
    """``async with``: the real startup (the managers' state reaches the requests, with
    the given entries on top), then the real shutdown; after it, the requests get the
    given state again."""
    register_lifespan_manager(context_manager=greeting)
    given: dict[str, Any] = {"http_client": "the test's"}
    client = LifespanAwareAsyncClient(state=given)
    async with client as entered:
        assert entered is client
        response = await client.get("/state")
        assert json.loads(response.content)["state"] == ["greeting", "http_client"]
        with pytest.raises(LifespanContainerError, match="enter it once"):
            await client.__aenter__()
    assert client.state is given
    response = await client.get("/state")
    assert json.loads(response.content) == {"state": ["http_client"]}


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("lifespan_container.register", ["register_lifespan_manager"]),
        ("lifespan_container.signals", ["asgi_startup", "asgi_shutdown", "asgi_lifespan"]),
        ("lifespan_container.middleware", ["LifespanStateMiddleware", "AsyncMiddleware"]),
        ("lifespan_container.testing", ["LifespanAwareAsyncClient"]),
        ("lifespan_container.handler", ["LifespanASGIHandler"]),
        ("lifespan_container.asgi", ["get_asgi_application"]),
        ("lifespan_container.types", ["State", "LifespanManager"]),
        ("lifespan_container.errors", ["BaseLifespanHandlerError", "MissingScopeStateError"]),
        ("lifespan_container.exceptions", ["MissingScopeStateError"]),
    ],
)
def test_django_asgi_lifespans_names_are_importable_from_ours(
    module: str, names: list[str]
) -> None:
    """Replacing ``django_asgi_lifespan`` by ``lifespan_container`` in imports is enough."""
    imported = importlib.import_module(module)
    for name in names:
        assert getattr(imported, name) is not None, name


def test_the_aliases_are_this_librarys_classes() -> None:
    """The handler is the same class; the errors derive from this library's base."""
    from lifespan_container.errors import (  # noqa: PLC0415
        BaseLifespanHandlerError,
        MissingScopeStateError,
    )
    from lifespan_container.handler import LifespanASGIHandler  # noqa: PLC0415

    assert LifespanASGIHandler is LifespanHandler
    assert BaseLifespanHandlerError is LifespanContainerError
    assert issubclass(MissingScopeStateError, BaseLifespanHandlerError)
