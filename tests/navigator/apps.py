"""The navigator app: listed after lifespan_container, as the example project has it."""

from __future__ import annotations

from django.apps import AppConfig


class NavigatorConfig(AppConfig):
    name = "tests.navigator"
