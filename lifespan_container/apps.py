"""The Django app: registers the system checks and loads the container once."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks as django_checks


class LifespanContainerConfig(AppConfig):
    """``lifespan_container`` in ``INSTALLED_APPS``."""

    name = "lifespan_container"
    verbose_name = "Lifespan container"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the checks; load the container when its setting is valid.

        A setting that is wrong does not raise here: ``manage.py check`` reports it
        with the fix, and ``get_asgi_application()`` refuses to start with it.
        """
        from lifespan_container import checks  # noqa: PLC0415
        from lifespan_container._runtime import (  # noqa: PLC0415
            load_runtime,
            set_runtime,
            setting_problems,
        )

        django_checks.register(checks.check_settings)
        django_checks.register(checks.check_injections)
        if not setting_problems():
            set_runtime(load_runtime())
