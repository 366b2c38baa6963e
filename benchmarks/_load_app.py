"""The applications ``load.py`` serves with uvicorn (``--factory``): the async view, no middleware.

uvicorn --factory --app-dir benchmarks _load_app:ours
"""

from __future__ import annotations

import _django

_django.setup(middleware=())

from django.core.asgi import get_asgi_application as vanilla_application
from django.core.handlers.asgi import ASGIHandler

from lifespan_container.asgi import get_asgi_application
from lifespan_container.handler import LifespanHandler


def ours() -> LifespanHandler:
    return get_asgi_application()


def vanilla() -> ASGIHandler:
    return vanilla_application()
