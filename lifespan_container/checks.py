"""System checks for ``settings.LIFESPAN_CONTAINER``.

=========================  ==========================================================
``lifespan_container.E001``  the setting is not a dict
``lifespan_container.E002``  the setting has unknown keys (a typo)
``lifespan_container.E003``  ``STARTUP_TIMEOUT`` is not a positive number
``lifespan_container.E004``  ``SHUTDOWN_TIMEOUT`` is not a positive number
``lifespan_container.E005``  ``CONTAINER`` is not set
``lifespan_container.E006``  ``CONTAINER`` is not a string, or does not import
``lifespan_container.E007``  ``CONTAINER`` is not a ``DeclarativeContainer`` subclass
=========================  ==========================================================
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

from lifespan_container._runtime import container_problems
from lifespan_container.conf import problems


def check_settings(**kwargs: Any) -> list[CheckMessage]:  # noqa: ARG001
    """Report every problem with ``settings.LIFESPAN_CONTAINER``."""
    return [
        Error(problem.msg, hint=problem.hint, id=problem.id)
        for problem in [*problems(), *container_problems()]
    ]
