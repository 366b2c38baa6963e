"""A view whose marker misspells a provider: importing this module raises AttributeError."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from lifespan_container import Provide, inject
from tests.containers import Container


@inject
async def typo(
    request: HttpRequest,
    greeting: str = Provide[Container.greting],  # type: ignore[attr-defined]
) -> HttpResponse:
    return HttpResponse(greeting)
