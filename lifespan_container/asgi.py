"""The entry point: ``application = get_asgi_application()`` in your ``asgi.py``."""

from __future__ import annotations

import django
from django.core.exceptions import ImproperlyConfigured

from lifespan_container._runtime import get_runtime, require_installed, setting_problems
from lifespan_container.handler import LifespanHandler

__all__ = ["get_asgi_application"]


def get_asgi_application() -> LifespanHandler:
    """Set Django up and return the lifespan-aware ASGI handler.

    It does what ``django.core.asgi.get_asgi_application()`` does
    (``django.setup(set_prefix=False)``), then refuses to start with a broken
    ``LIFESPAN_CONTAINER`` setting or without ``"lifespan_container"`` in
    ``INSTALLED_APPS``: the server exits with the error and its fix instead of
    serving without resources.
    """
    django.setup(set_prefix=False)
    require_installed()
    found = setting_problems()
    if found:
        raise ImproperlyConfigured(" ".join(map(str, found)))
    return LifespanHandler(get_runtime())
