"""Views of every kind that receive resources through @inject."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from django.views.generic import RedirectView
from rest_framework.decorators import action, api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from lifespan_container import Provide, get_container, inject
from tests.containers import Container, Files, WeatherService


@inject
async def async_function(
    request: HttpRequest, http: httpx.AsyncClient = Provide[Container.http]
) -> JsonResponse:
    upstream = await http.get("/async-function")
    return JsonResponse({"view": "async function", "upstream": upstream.json()})


@inject
def sync_function(request: HttpRequest, files: Files = Provide[Container.files]) -> JsonResponse:
    return JsonResponse({"view": "sync function", "files_open": not files.closed})


@inject
def sync_bridge(
    request: HttpRequest, http: Annotated[httpx.AsyncClient, Provide[Container.http]]
) -> JsonResponse:
    """A sync view using an async client: async_to_sync runs it on the serving loop."""

    async def call() -> tuple[Any, bool]:
        response = await http.get("/sync-bridge")
        lifecycle = get_container_lifecycle()
        return response.json(), asyncio.get_running_loop() is lifecycle.loop

    upstream, on_lifespan_loop = async_to_sync(call)()
    return JsonResponse(
        {"view": "sync bridge", "upstream": upstream, "on_lifespan_loop": on_lifespan_loop}
    )


def get_container_lifecycle() -> Any:
    from lifespan_container.runtime import get_runtime  # noqa: PLC0415

    return get_runtime().lifecycle


@inject
async def by_name(request: HttpRequest, greeting: str = Provide["greeting"]) -> HttpResponse:
    return HttpResponse(greeting)


@inject
async def factory(
    request: HttpRequest, weather: WeatherService = Provide[Container.weather]
) -> JsonResponse:
    upstream = await weather.http.get("/factory")
    return JsonResponse({"view": "factory", "upstream": upstream.json()})


@inject
async def configuration(
    request: HttpRequest, url: str = Provide[Container.config.upstream_url]
) -> HttpResponse:
    return HttpResponse(url)


class ClassBased(View):
    @inject
    async def get(
        self, request: HttpRequest, http: httpx.AsyncClient = Provide[Container.http]
    ) -> JsonResponse:
        upstream = await http.get("/class-based")
        return JsonResponse({"view": "class-based", "upstream": upstream.json()})


class SyncClassBased(View):
    @inject
    def get(self, request: HttpRequest, files: Files = Provide[Container.files]) -> JsonResponse:
        return JsonResponse({"view": "sync class-based", "files_open": not files.closed})


class Redirect(RedirectView):
    @inject
    def get_redirect_url(
        self, *args: Any, files: Files = Provide[Container.files], **kwargs: Any
    ) -> str:
        return f"/files-open/{not files.closed}"


class DRFAPIView(APIView):
    @inject
    def get(self, request: Request, files: Files = Provide[Container.files]) -> Response:
        return Response({"view": "APIView", "files_open": not files.closed})


class DRFViewSet(ViewSet):
    @inject
    def list(self, request: Request, files: Files = Provide[Container.files]) -> Response:
        return Response({"view": "ViewSet.list", "files_open": not files.closed})

    @action(detail=False)
    @inject
    def greeting(self, request: Request, greeting: str = Provide[Container.greeting]) -> Response:
        return Response({"view": "ViewSet action", "greeting": greeting})


@api_view(["GET"])
@inject
def drf_function(request: Request, files: Files = Provide[Container.files]) -> Response:
    return Response({"view": "api_view", "files_open": not files.closed})


def container_http(request: HttpRequest) -> HttpResponse:
    """Not injected: uses the container directly (for the loop-safety tests)."""
    return HttpResponse(repr(get_container().http()))


@inject
async def database_now(
    request: HttpRequest, pool: Any = Provide[Container.db_pool]
) -> JsonResponse:
    """Asks PostgreSQL (or a fake pool) for its time through the pool resource."""
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT 'now'::text, current_setting('application_name')")
        row = await cursor.fetchone()
    return JsonResponse({"answer": row[0], "application_name": row[1]})


async def state_view(request: HttpRequest) -> JsonResponse:
    """Shows the lifespan state this request got, then scribbles on its copy."""
    from lifespan_container import lifespan_state  # noqa: PLC0415

    state = lifespan_state(request)
    seen = dict(state)
    state["scribbled"] = True
    return JsonResponse({"state": {k: str(v) for k, v in seen.items()}})


@inject
async def users(request: HttpRequest, greeting: str = Provide[Container.greeting]) -> JsonResponse:
    """The ORM and a resource in one view (for the database-mark tests)."""
    from django.contrib.auth.models import User  # noqa: PLC0415

    return JsonResponse({"users": await User.objects.acount(), "greeting": greeting})
