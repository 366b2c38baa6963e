"""The Django app: registers the system checks and loads the container once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig
from django.core import checks as django_checks

if TYPE_CHECKING:
    from lifespan_container._runtime import Runtime


class LifespanContainerConfig(AppConfig):
    """``lifespan_container`` in ``INSTALLED_APPS``."""

    name = "lifespan_container"
    verbose_name = "Lifespan container"
    default_auto_field = "django.db.models.BigAutoField"

    runtime: Runtime | None = None

    def ready(self) -> None:
        """Register the checks; load the container when its setting is valid.

        A setting that is wrong does not raise here: ``manage.py check`` reports it
        with the fix, and ``get_asgi_application()`` refuses to start with it.
        """
        from lifespan_container import checks  # noqa: PLC0415
        from lifespan_container._runtime import container_problems, load_runtime  # noqa: PLC0415
        from lifespan_container.conf import problems  # noqa: PLC0415

        django_checks.register(checks.check_settings)
        if not problems() and not container_problems():
            self.runtime = load_runtime()
