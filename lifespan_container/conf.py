"""The ``LIFESPAN_CONTAINER`` setting, read in one place with its defaults.

.. code-block:: python

    LIFESPAN_CONTAINER = {
        "CONTAINER": "myproject.containers.Container",
        "STARTUP_TIMEOUT": 30.0,
        "SHUTDOWN_TIMEOUT": 30.0,
        "HEALTH_CHECK_TIMEOUT": 5.0,
        "HEALTH_CHECK_CACHE": 1.0,
        # None (the default): every providers.Configuration of the container gets
        # every upper-case Django setting. Or say where each gets its values:
        "CONFIGURATION": {"config": ["settings:WEATHER", "env:WEATHER_"]},
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

from lifespan_container._phase import non_negative_number, positive_number

SETTING: Final = "LIFESPAN_CONTAINER"

DEFAULTS: Final[dict[str, Any]] = {
    "STARTUP_TIMEOUT": 30.0,
    "SHUTDOWN_TIMEOUT": 30.0,
    "HEALTH_CHECK_TIMEOUT": 5.0,
    # Long enough that a burst of probes (several kubelets, a load balancer, a
    # dashboard) costs one check per resource; short enough that a failure shows at
    # the next probe period (Kubernetes probes every 10 s by default).
    "HEALTH_CHECK_CACHE": 1.0,
    "CONFIGURATION": None,
}
"""Every key with a default. ``CONTAINER`` has none: it must be set (``None`` is allowed)."""

KEYS: Final = frozenset({"CONTAINER", *DEFAULTS})

TIMEOUTS: Final = {
    "STARTUP_TIMEOUT": "E003",
    "SHUTDOWN_TIMEOUT": "E004",
    "HEALTH_CHECK_TIMEOUT": "E008",
}
"""Each key holding seconds -> the id of the check that reports a bad value."""

NON_NEGATIVE: Final = {"HEALTH_CHECK_CACHE": "E009"}
"""Each key holding seconds where ``0`` is allowed (it turns the feature off)."""

CONFIGURATION_SOURCES: Final = ("settings", "settings:NAME", "env:PREFIX")
"""How ``CONFIGURATION`` may fill a ``providers.Configuration``, as the hint lists them."""


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

    startup_timeout: float
    shutdown_timeout: float
    health_check_timeout: float
    health_check_cache: float


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
            found.append(_seconds_problem(key, check_id, timeout, "a positive number"))
    for key, check_id in NON_NEGATIVE.items():
        seconds = value.get(key, DEFAULTS[key])
        if not non_negative_number(seconds):
            found.append(_seconds_problem(key, check_id, seconds, "a number (0 or more)"))
    found += configuration_problems(value.get("CONFIGURATION"))
    return found


def _seconds_problem(key: str, check_id: str, value: object, what: str) -> Problem:
    return Problem(
        f"lifespan_container.{check_id}",
        f"settings.{SETTING}[{key!r}] must be {what} of seconds, not {_short_repr(value)}.",
        f"Set it to a number such as {DEFAULTS[key]!r}, or remove it for the default.",
    )


def _short_repr(value: object) -> str:
    """``repr(value)``, cut short (``10**400`` has 401 digits)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 (a value whose repr fails is still reported)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else f"{text[:57]}..."


def configuration_problems(value: object) -> list[Problem]:
    """What is wrong with the shape of ``CONFIGURATION`` (E010).

    ``None`` (the default) or ``{path: source}``, where ``path`` names a
    ``providers.Configuration`` of the container (``"config"``) and ``source`` is
    ``"settings"``, ``"settings:NAME"``, ``"env:PREFIX"`` or a list of them.
    """
    if value is None:
        return []
    hint = (
        'Write "CONFIGURATION": {"config": "settings"}: each key names a '
        "providers.Configuration of the container, each value is one of "
        f"{', '.join(repr(s) for s in CONFIGURATION_SOURCES)}, or a list of them."
    )
    where = f'settings.{SETTING}["CONFIGURATION"]'
    if not isinstance(value, dict):
        return [
            Problem(
                "lifespan_container.E010",
                f"{where} must be a dict, not {type(value).__name__}.",
                hint,
            )
        ]
    found: list[Problem] = []
    for path, sources in value.items():
        listed = sources if isinstance(sources, list | tuple) else [sources]
        bad = [s for s in listed if parse_source(s) is None]
        if not isinstance(path, str) or not path or not listed or bad:
            found.append(
                Problem(
                    "lifespan_container.E010",
                    f"{where}[{path!r}] = {_short_repr(sources)} is not a configuration source.",
                    hint,
                )
            )
    return found


def parse_source(source: object) -> tuple[str, str] | None:
    """``("settings", "")``, ``("settings", NAME)`` or ``("env", PREFIX)``; ``None`` if bad."""
    if not isinstance(source, str):
        return None
    kind, _, argument = source.partition(":")
    if kind == "settings" and (not _ or argument.isidentifier()):
        return kind, argument
    if kind == "env" and argument:
        return kind, argument
    return None


def lifespan_settings() -> LifespanSettings:
    """Read and validate the setting; raise ``ImproperlyConfigured`` naming each problem."""
    found = problems()
    if found:
        raise ImproperlyConfigured(" ".join(map(str, found)))
    value: dict[str, Any] = {**DEFAULTS, **raw()}
    return LifespanSettings(
        startup_timeout=float(value["STARTUP_TIMEOUT"]),
        shutdown_timeout=float(value["SHUTDOWN_TIMEOUT"]),
        health_check_timeout=float(value["HEALTH_CHECK_TIMEOUT"]),
        health_check_cache=float(value["HEALTH_CHECK_CACHE"]),
    )
