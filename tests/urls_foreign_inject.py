"""A URLconf whose views still use dependency-injector's own ``@inject`` (check E103)."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide as DIProvide
from dependency_injector.wiring import inject as di_inject
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import View

from tests.containers import Container


@di_inject
async def half_migrated(
    request: HttpRequest, greeting: str = DIProvide[Container.greeting]
) -> HttpResponse:
    return HttpResponse(greeting.upper())


class HalfMigratedClass(View):
    @di_inject
    def get(self, request: HttpRequest, greeting: Any = DIProvide[Container.greeting]) -> Any:
        return HttpResponse(greeting.upper())


urlpatterns = [
    path("half-migrated", half_migrated),
    path("half-migrated-class", HalfMigratedClass.as_view()),
]
