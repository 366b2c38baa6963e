"""The ``LIFESPAN_CONTAINER`` setting, read in one place with its defaults.

.. code-block:: python

    LIFESPAN_CONTAINER = {
        "CONTAINER": "myproject.containers.Container",
        "STARTUP_TIMEOUT": 30.0,
        "SHUTDOWN_TIMEOUT": 30.0,
        "HEALTH_CHECK_TIMEOUT": 5.0,
    }

Values are read from ``django.conf.settings`` on every access, so
``override_settings`` works in tests. :func:`problems` validates them; the system
checks report its findings and :func:`lifespan_settings` raises them as
``ImproperlyConfigured`` at startup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from lifespan_container._phase import positive_number

SETTING: Final = "LIFESPAN_CONTAINER"

DEFAULTS: Final[dict[str, Any]] = {
    "STARTUP_TIMEOUT": 30.0,
    "SHUTDOWN_TIMEOUT": 30.0,
    "HEALTH_CHECK_TIMEOUT": 5.0,
}
"""Every key with a default. ``CONTAINER`` has none: it must be set (``None`` is allowed)."""

KEYS: Final = frozenset({"CONTAINER", *DEFAULTS})

TIMEOUTS: Final = {
    "STARTUP_TIMEOUT": "E003",
    "SHUTDOWN_TIMEOUT": "E004",
    "HEALTH_CHECK_TIMEOUT": "E008",
}
"""Each key holding seconds -> the id of the check that reports a bad value."""


@dataclass(frozen=True)
class Problem:
    """A setting that is wrong: ``id`` is the system check id, ``hint`` the fix."""

    id: str
    msg: str
    hint: str

    def __str__(self) -> str:
        return f"{self.msg} {self.hint} ({self.id})"


@dataclass(frozen=True)
class LifespanSettings:
    """A validated snapshot of ``LIFESPAN_CONTAINER``."""

    container: str | None
    startup_timeout: float
    shutdown_timeout: float
    health_check_timeout: float


def raw() -> Any:
    """The setting as the project wrote it (``{}`` when it is missing)."""
    return getattr(settings, SETTING, {})


def problems() -> list[Problem]:
    """Everything wrong with the timeouts and the shape of the setting."""
    value = raw()
    if not isinstance(value, dict):
        return [
            Problem(
                "lifespan_container.E001",
                f"settings.{SETTING} must be a dict, not {type(value).__name__}.",
                f'Write {SETTING} = {{"CONTAINER": "myproject.containers.Container"}}.',
            )
        ]
    found: list[Problem] = []
    unknown = sorted(map(str, set(value) - KEYS))
    if unknown:
        found.append(
            Problem(
                "lifespan_container.E002",
                f"settings.{SETTING} has unknown keys: {', '.join(unknown)}.",
                f"The keys are {', '.join(sorted(KEYS))}; check the spelling.",
            )
        )
    for key, check_id in TIMEOUTS.items():
        timeout = value.get(key, DEFAULTS[key])
        if not positive_number(timeout):
            found.append(
                Problem(
                    f"lifespan_container.{check_id}",
                    f"settings.{SETTING}[{key!r}] must be a positive number of seconds, "
                    f"not {timeout!r}.",
                    f"Set it to a number such as {DEFAULTS[key]!r}, or remove it for the default.",
                )
            )
    return found


def lifespan_settings() -> LifespanSettings:
    """Read and validate the setting; raise ``ImproperlyConfigured`` naming each problem."""
    found = problems()
    if found:
        raise ImproperlyConfigured(" ".join(map(str, found)))
    value: dict[str, Any] = {**DEFAULTS, **raw()}
    return LifespanSettings(
        container=value.get("CONTAINER"),
        startup_timeout=float(value["STARTUP_TIMEOUT"]),
        shutdown_timeout=float(value["SHUTDOWN_TIMEOUT"]),
        health_check_timeout=float(value["HEALTH_CHECK_TIMEOUT"]),
    )
