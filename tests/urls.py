from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from lifespan_container import lifespan_state
from tests import views


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


async def state(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"state": sorted(lifespan_state(request))})


router = SimpleRouter()
router.register("viewset", views.DRFViewSet, basename="viewset")

urlpatterns = [
    path("health/", include("lifespan_container.urls")),
    path("hello", hello),
    path("state", state),
    path("async-function", views.async_function),
    path("sync-function", views.sync_function),
    path("sync-bridge", views.sync_bridge),
    path("by-name", views.by_name),
    path("factory", views.factory),
    path("configuration", views.configuration),
    path("class-based", views.ClassBased.as_view()),
    path("sync-class-based", views.SyncClassBased.as_view()),
    path("redirect", views.Redirect.as_view()),
    path("api-view", views.DRFAPIView.as_view()),
    path("drf-function", views.drf_function),
    path("database-now", views.database_now),
    path("lifespan-state", views.state_view),
    path("users", views.users),
    *router.urls,
]
