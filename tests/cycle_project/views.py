"""Views and middleware that query ``DATABASES["default"]`` as Django code does.

- ``/sync``: a sync view (Django runs it in the request's thread);
- ``/async-orm``: an async view calling the ORM with ``await sync_to_async(...)()``;
- ``/async``: an async view that queries nothing (with a querying middleware from
  the settings, the middleware's query is the request's only one);
- ``/collect``: runs the garbage collector (``settings.py`` turned it off), and
  queries nothing, not even in the middleware.

Each answers with the ``pg_backend_pid()`` it queried (``-`` when it queried none).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.deprecation import MiddlewareMixin


def query() -> str:
    """One query on the thread's connection (opened by it if it has none)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    return str(row[0]) if row else "-"


def sync_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(query())


async def async_orm_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(await sync_to_async(query)())


async def async_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(getattr(request, "backend", "-"))


async def collect(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(gc.collect()))


def query_before_view(request: HttpRequest) -> None:
    if request.path != "/collect":
        request.backend = query()  # type: ignore[attr-defined]


class QueryingMixinMiddleware(MiddlewareMixin):
    """A ``MiddlewareMixin``: Django runs ``process_request`` with ``sync_to_async``."""

    def process_request(self, request: HttpRequest) -> None:
        query_before_view(request)


def querying_sync_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A sync-only middleware: Django runs it, and the view under it, in the thread."""

    def middleware(request: HttpRequest) -> HttpResponse:
        query_before_view(request)
        return get_response(request)

    return middleware


urlpatterns = [
    path("sync", sync_view),
    path("async-orm", async_orm_view),
    path("async", async_view),
    path("collect", collect),
]
