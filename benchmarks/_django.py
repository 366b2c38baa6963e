"""A minimal Django configuration shared by the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

SECURITY_AND_COMMON = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
)


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello")


def hello_sync(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello")


urlpatterns = [path("hello", hello), path("hello-sync", hello_sync)]


def setup(middleware: Sequence[str] = SECURITY_AND_COMMON) -> None:
    """Configure Django once; handlers built later get ``middleware`` unless overridden."""
    if not settings.configured:
        settings.configure(
            SECRET_KEY="benchmarks-only",  # noqa: S106
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["lifespan_container"],
            MIDDLEWARE=list(middleware),
            DATABASES={},
            LIFESPAN_CONTAINER={"CONTAINER": None},
        )
        django.setup()
