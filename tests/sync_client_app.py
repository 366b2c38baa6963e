"""Views for Django's sync test clients with the real lifespan (test_sync_clients.py).

The project's views (``tests.urls``) plus one that renders a template, and a DRF view
that reaches the async HTTP client through ``async_to_sync``.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifespan_container import Provide, inject
from tests.containers import Container

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [
                (
                    "django.template.loaders.locmem.Loader",
                    {"forecast.html": "<p>{{ city }}: {{ upstream.path }}</p>"},
                )
            ]
        },
    }
]
"""A ``TEMPLATES`` setting with the one template of :func:`forecast`."""


@inject
async def forecast(
    request: HttpRequest, city: str, http: httpx.AsyncClient = Provide[Container.http]
) -> HttpResponse:
    upstream = await http.get(f"/forecast/{city}")
    return render(request, "forecast.html", {"city": city, "upstream": upstream.json()})


class UpstreamAPIView(APIView):
    @inject
    def get(
        self, request: Request, http: Annotated[httpx.AsyncClient, Provide[Container.http]]
    ) -> Response:
        upstream = async_to_sync(http.get)("/drf")
        return Response({"view": "APIView", "upstream": upstream.json()})


urlpatterns = [
    path("forecast/<str:city>", forecast),
    path("drf-upstream", UpstreamAPIView.as_view()),
    path("", include("tests.urls")),
]
