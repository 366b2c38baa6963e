from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from lifespan_container import lifespan_state


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


async def state(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"state": sorted(lifespan_state(request))})


urlpatterns = [
    path("hello", hello),
    path("state", state),
]
