"""``LifespanStateMiddleware`` sets ``request.state``: an empty dict without a state."""

from __future__ import annotations

import inspect
from typing import Any, cast

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory

from lifespan_container.middleware import LifespanStateMiddleware


async def state_seen_by_the_view(request: HttpRequest) -> Any:
    seen: list[Any] = []

    async def view(request: HttpRequest) -> HttpResponse:
        seen.append(getattr(request, "state"))  # noqa: B009
        return HttpResponse("OK")

    response = LifespanStateMiddleware(view)(request)
    if inspect.isawaitable(response):
        response = await response
    assert isinstance(response, HttpResponse)
    assert response.status_code == 200
    [state] = seen
    return state


@pytest.mark.asyncio
async def test_a_request_without_a_lifespan_state_gets_an_empty_dict() -> None:
    request = AsyncRequestFactory().get("/")
    assert "state" not in request.scope
    assert await state_seen_by_the_view(request) == {}


@pytest.mark.asyncio
async def test_a_request_gets_the_state_of_its_scope() -> None:
    request = AsyncRequestFactory().get("/")
    scope = cast("dict[str, Any]", request.scope)
    scope["state"] = {"httpx_client_from_user": "a client"}
    assert await state_seen_by_the_view(request) == {"httpx_client_from_user": "a client"}
