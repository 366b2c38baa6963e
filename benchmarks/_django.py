"""A minimal Django configuration shared by the benchmarks."""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello")


urlpatterns = [path("hello", hello)]


def setup() -> None:
    if not settings.configured:
        settings.configure(
            SECRET_KEY="benchmarks-only",  # noqa: S106
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["lifespan_container"],
            MIDDLEWARE=[
                "django.middleware.security.SecurityMiddleware",
                "django.middleware.common.CommonMiddleware",
            ],
            DATABASES={},
            LIFESPAN_CONTAINER={"CONTAINER": None},
        )
        django.setup()
