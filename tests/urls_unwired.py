"""A URLconf with views that declare markers but forgot @inject (check E102)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import View
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from lifespan_container import Provide
from tests.containers import Container


async def unwired(
    request: HttpRequest, greeting: str = Provide[Container.greeting]
) -> HttpResponse:
    return HttpResponse(greeting)


class UnwiredClass(View):
    def get(
        self, request: HttpRequest, greeting: str = Provide[Container.greeting]
    ) -> HttpResponse:
        return HttpResponse(greeting)


@api_view(["GET"])
def unwired_api(request: Request, greeting: Any = Provide[Container.greeting]) -> Response:
    return Response(greeting)


async def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no markers")


urlpatterns = [
    path("unwired", unwired),
    path("class", UnwiredClass.as_view()),
    path("api", unwired_api),
    path("plain", plain),
]
