"""The entry point: ``application = get_asgi_application()`` in your ``asgi.py``."""

from __future__ import annotations

import django

from lifespan_container._runtime import checked_runtime
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
    return LifespanHandler(checked_runtime())
