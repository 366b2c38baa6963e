from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from lifespan_container import get_container, lifespan_state
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


urlpatterns = [path("resources", resources)]
