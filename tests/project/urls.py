from __future__ import annotations

import asyncio
from typing import Any

import httpx
from asgiref.sync import async_to_sync
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views import View
from django.views.generic import RedirectView
from rest_framework.decorators import action, api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from lifespan_container import Provide, get_container, inject, lifespan_state
from lifespan_container.runtime import get_runtime
from tests.project.containers import Container
from tests.project.events import record


async def resources(request: HttpRequest) -> JsonResponse:
    record("request")
    container = get_container()
    return JsonResponse(
        {
            "http": container.http(),
            "cache": container.cache(),
            "state": sorted(lifespan_state(request)),
        }
    )


async def echo(request: HttpRequest, rest: str) -> JsonResponse:
    """The upstream the `upstream` client calls: this server itself."""
    return JsonResponse({"echo": rest})


@inject
async def async_function(
    request: HttpRequest, upstream: httpx.AsyncClient = Provide[Container.upstream]
) -> JsonResponse:
    return JsonResponse((await upstream.get("/echo/async-function")).json())


@inject
def sync_function(request: HttpRequest, cache: str = Provide[Container.cache]) -> JsonResponse:
    return JsonResponse({"cache": cache})


@inject
def sync_bridge(
    request: HttpRequest, upstream: httpx.AsyncClient = Provide[Container.upstream]
) -> JsonResponse:
    async def call() -> tuple[object, bool]:
        response = await upstream.get("/echo/sync-bridge")
        lifecycle = get_runtime().lifecycle
        assert lifecycle is not None
        return response.json(), asyncio.get_running_loop() is lifecycle.loop

    body, on_lifespan_loop = async_to_sync(call)()
    return JsonResponse({"upstream": body, "on_lifespan_loop": on_lifespan_loop})


class ClassBased(View):
    @inject
    async def get(
        self, request: HttpRequest, upstream: httpx.AsyncClient = Provide[Container.upstream]
    ) -> JsonResponse:
        return JsonResponse((await upstream.get("/echo/class-based")).json())


class SyncClassBased(View):
    @inject
    def get(self, request: HttpRequest, cache: str = Provide[Container.cache]) -> JsonResponse:
        return JsonResponse({"cache": cache})


class Redirect(RedirectView):
    @inject
    def get_redirect_url(
        self, *args: object, http: str = Provide[Container.http], **kwargs: object
    ) -> str:
        return f"/echo/{http}"


class DRFAPIView(APIView):
    @inject
    def get(self, request: Request, cache: str = Provide[Container.cache]) -> Response:
        return Response({"cache": cache})


class DRFViewSet(ViewSet):
    @inject
    def list(self, request: Request, cache: str = Provide[Container.cache]) -> Response:
        return Response({"cache": cache})

    @action(detail=False)
    @inject
    def http(self, request: Request, http: str = Provide[Container.http]) -> Response:
        return Response({"http": http})


@api_view(["GET"])
@inject
def drf_function(request: Request, cache: str = Provide[Container.cache]) -> Response:
    return Response({"cache": cache})


router = SimpleRouter()
router.register("viewset", DRFViewSet, basename="viewset")


async def slow(request: HttpRequest) -> JsonResponse:
    """A request still in flight when the server is told to stop."""
    record("slow begin")
    await asyncio.sleep(float(request.GET.get("seconds", "0.5")))
    get_container().http()  # the resources are still open here
    record("slow end")
    return JsonResponse({"slow": "done"})


@inject
async def pool_query(request: HttpRequest, pool: Any = Provide["pool"]) -> JsonResponse:
    """One query through the worker's pool; reports the pool's size as it goes."""
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT 1")
        (one,) = await cursor.fetchone()
    stats = pool.get_stats()
    return JsonResponse({"one": one, "pool_size": stats.get("pool_size"), "max": pool.max_size})


urlpatterns = [
    path("health/", include("lifespan_container.urls")),
    path("resources", resources),
    path("slow", slow),
    path("pool", pool_query),
    path("echo/<path:rest>", echo),
    path("async-function", async_function),
    path("sync-function", sync_function),
    path("sync-bridge", sync_bridge),
    path("class-based", ClassBased.as_view()),
    path("sync-class-based", SyncClassBased.as_view()),
    path("redirect", Redirect.as_view()),
    path("api-view", DRFAPIView.as_view()),
    path("drf-function", drf_function),
    *router.urls,
]
