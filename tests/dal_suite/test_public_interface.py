"""The names a django-asgi-lifespan user imports exist, under our package."""

from __future__ import annotations

from collections.abc import AsyncGenerator, MutableMapping
from typing import get_origin
from unittest import mock

from django.core.handlers.asgi import ASGIHandler
from django.dispatch import Signal
from django.test import AsyncClient

from lifespan_container.asgi import get_asgi_application
from lifespan_container.errors import MissingScopeStateError
from lifespan_container.handler import LifespanASGIHandler, LifespanHandler
from lifespan_container.middleware import LifespanStateMiddleware
from lifespan_container.register import register_lifespan_manager
from lifespan_container.signals import asgi_lifespan, asgi_shutdown, asgi_startup
from lifespan_container.testing import LifespanAwareAsyncClient
from lifespan_container.types import LifespanManager, State


def test_get_asgi_application_returns_an_asgi_handler() -> None:
    application = get_asgi_application()
    assert isinstance(application, ASGIHandler)
    assert isinstance(application, LifespanASGIHandler)


def test_get_asgi_application_calls_django_setup() -> None:
    with mock.patch("lifespan_container.asgi.django.setup") as setup:
        setup.assert_not_called()
        get_asgi_application()
    setup.assert_called_once()


def test_the_three_signals_are_django_signals() -> None:
    assert isinstance(asgi_startup, Signal)
    assert isinstance(asgi_shutdown, Signal)
    assert isinstance(asgi_lifespan, Signal)
    assert len({id(asgi_startup), id(asgi_shutdown), id(asgi_lifespan)}) == 3


def test_the_other_names_of_the_drop_in_exist() -> None:
    assert issubclass(LifespanASGIHandler, LifespanHandler)
    assert issubclass(LifespanASGIHandler, ASGIHandler)
    assert issubclass(LifespanAwareAsyncClient, AsyncClient)
    assert issubclass(MissingScopeStateError, Exception)
    assert callable(register_lifespan_manager)
    assert callable(LifespanStateMiddleware)
    # The type aliases have django-asgi-lifespan's shapes (the project's manager
    # function is annotated with LifespanManager, which mypy checks).
    assert get_origin(State) is MutableMapping
    assert get_origin(LifespanManager) is AsyncGenerator
