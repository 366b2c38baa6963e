"""Checked by `mypy --strict` (never run): how @inject and Provide look to a type checker.

Each `# type: ignore[code]` marks a line that must be an error: with
`warn_unused_ignores` (part of --strict), mypy fails if the error goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, assert_type

import httpx
from dependency_injector import containers, providers
from django.http import HttpRequest, HttpResponse

from lifespan_container import Provide, inject


async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def settings_file() -> Iterator[dict[str, str]]:
    yield {}


class Container(containers.DeclarativeContainer):
    http = providers.Resource(http_client)
    settings = providers.Resource(settings_file)


# Provide[...] has the type of the provider's value, so the default is checked.
assert_type(Provide[Container.http], httpx.AsyncClient)
assert_type(Provide[Container.settings], dict[str, str])


@inject
async def weather(
    request: HttpRequest, http: httpx.AsyncClient = Provide[Container.http]
) -> HttpResponse:
    assert_type(http, httpx.AsyncClient)
    return HttpResponse((await http.get("/")).content)


@inject
def report(
    request: HttpRequest, settings: Annotated[dict[str, str], Provide[Container.settings]]
) -> HttpResponse:
    assert_type(settings, dict[str, str])
    return HttpResponse(str(settings))


# @inject keeps the signature: the view is still called with a request, and an
# explicit argument must have the declared type.
async def calls(request: HttpRequest, client: httpx.AsyncClient) -> None:
    response: HttpResponse = await weather(request)
    response = await weather(request, http=client)
    response = await weather(request, http=42)  # type: ignore[arg-type]
    report(request, settings={"a": "b"})
    report(request, settings=[1])  # type: ignore[arg-type]
    del response


# A marker whose provider gives another type than the parameter declares is an error.
@inject
async def wrong(
    request: HttpRequest,
    http: int = Provide[Container.http],  # type: ignore[assignment]
) -> HttpResponse:
    return HttpResponse(str(http))
