"""Two views: one uses the app config's client, one the client from the lifespan state.

Each sends one request upstream (``settings.DAL_UPSTREAM_URL``, a local server)
and answers 200, or 500 when its client is closed.
"""

from __future__ import annotations

from http import HTTPStatus

import httpx
from django.apps import apps
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from tests.dal_project.test_app.apps import DalTestAppConfig


def _upstream(path: str) -> str:
    base: str = getattr(settings, "DAL_UPSTREAM_URL", "")
    if not base:
        msg = "DAL_UPSTREAM_URL is not set: the suite starts a local upstream and sets it"
        raise RuntimeError(msg)
    return base + path


def _error(text: str) -> HttpResponse:
    return HttpResponse(text, status=HTTPStatus.INTERNAL_SERVER_ERROR, content_type="text/plain")


async def client_from_app_config(request: HttpRequest) -> HttpResponse:
    config = apps.get_app_config("dal_test_app")
    assert isinstance(config, DalTestAppConfig)
    client = config.httpx_clients.current()
    if client is None:
        return _error("No HTTPX Client from app config: no lifespan started in this event loop")
    if client.is_closed:
        return _error("HTTPX Client from app config is closed")
    upstream = await client.get(_upstream("/app-config"))
    upstream.raise_for_status()
    return HttpResponse(
        f"OK app config (upstream answered {upstream.json()['path']})",
        content_type="text/plain; charset=utf-8",
    )


async def client_from_scope_state(request: HttpRequest) -> HttpResponse:
    state = getattr(request, "state")  # noqa: B009 (set by LifespanStateMiddleware)
    assert state
    client = state["httpx_client_from_user"]
    assert isinstance(client, httpx.AsyncClient)
    if client.is_closed:
        return _error("HTTPX Client from state is closed")
    upstream = await client.get(_upstream("/scope-state"))
    upstream.raise_for_status()
    return HttpResponse(
        f"OK state (upstream answered {upstream.json()['path']}); client {id(client)}",
        content_type="text/plain; charset=utf-8",
    )
