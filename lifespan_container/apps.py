"""The Django app: registers the system checks and loads the container once."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks as django_checks
from django.core.signals import got_request_exception


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
        from lifespan_container import _checks as checks  # noqa: PLC0415
        from lifespan_container._request_scope import note_exception  # noqa: PLC0415
        from lifespan_container._runtime import current_runtime, get_runtime  # noqa: PLC0415
        from lifespan_container._settings import setting_problems  # noqa: PLC0415

        django_checks.register(checks.check_settings)
        django_checks.register(checks.check_configuration)
        django_checks.register(checks.check_injections)
        django_checks.register(checks.check_request_scope)
        got_request_exception.connect(
            note_exception, weak=False, dispatch_uid="lifespan_container.per_request"
        )
        checks.report_urlconf_import_errors()
        # Created here unless an app listed earlier already asked for it: one per process.
        if current_runtime() is None and not setting_problems():
            get_runtime()
