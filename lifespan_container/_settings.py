"""The ``LIFESPAN_CONTAINER`` setting: defaults, validation, and every system check id.

.. code-block:: python

    LIFESPAN_CONTAINER = {
        "CONTAINER": "myproject.containers.Container",
        "STARTUP_TIMEOUT": 30.0,
        "SHUTDOWN_TIMEOUT": 30.0,
        "HEALTH_CHECK_TIMEOUT": 5.0,
        "HEALTH_CHECK_CACHE": 1.0,
        "REQUEST_CLEANUP_TIMEOUT": 10.0,
        # False: Django's own request path, with its thread for every request.
        "FAST_PATH": True,
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

from dependency_injector import containers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from lifespan_container._redact import describe_error, redact, where_raised
from lifespan_container.engine.limits import Limit, non_negative_number, positive_number

SETTING: Final = "LIFESPAN_CONTAINER"

CHECKS: Final[dict[str, str]] = {
    "E001": "the setting is not a dict",
    "E002": "the setting has unknown keys (a typo)",
    "E003": "``STARTUP_TIMEOUT`` is not a positive number",
    "E004": "``SHUTDOWN_TIMEOUT`` is not a positive number",
    "E005": "``CONTAINER`` is not set",
    "E006": "``CONTAINER`` is not a string, or does not import",
    "E007": "``CONTAINER`` is not a ``DeclarativeContainer`` subclass",
    "E008": "``HEALTH_CHECK_TIMEOUT`` is not a positive number",
    "E009": "``HEALTH_CHECK_CACHE`` is not a number of seconds (0 or more)",
    "E010": "``CONFIGURATION`` is not a mapping of configurations to sources",
    "E011": "``CONFIGURATION`` names no ``providers.Configuration``",
    "E012": "a required configuration option has no value",
    "E013": "a resource depends on itself, through any provider",
    "E014": "``REQUEST_CLEANUP_TIMEOUT`` is not a positive number",
    "E015": "an app-scoped provider depends on a request-scoped one",
    "E016": "an app-scoped provider depends on ``CurrentRequest()``",
    "E017": "``FAST_PATH`` is not ``True`` or ``False``",
    "E101": "an ``@inject`` marker names no provider of the container",
    "E102": "a routed view declares ``Provide[...]`` without ``@inject``",
    "E103": "a routed view uses dependency-injector's own ``@inject``",
    "E104": "the URLconf cannot be imported (e.g. ``Provide[Container.typo]``)",
}
"""Every system check id of the library -> what it reports (the one list of them)."""


def check_id(code: str) -> str:
    """The full id of check ``code``: ``E001`` -> ``lifespan_container.E001``."""
    if code not in CHECKS:
        msg = f"Unknown check id {code!r}: add it to CHECKS."
        raise KeyError(msg)
    return f"lifespan_container.{code}"


DEFAULTS: Final[dict[str, Any]] = {
    "STARTUP_TIMEOUT": 30.0,
    "SHUTDOWN_TIMEOUT": 30.0,
    "HEALTH_CHECK_TIMEOUT": 5.0,
    # Long enough that a burst of probes (several kubelets, a load balancer, a
    # dashboard) costs one check per resource; short enough that a failure shows at
    # the next probe period (Kubernetes probes every 10 s by default).
    "HEALTH_CHECK_CACHE": 1.0,
    # Closing a request's resources (a commit, returning a connection) is quick; a
    # close that takes longer than this is hung, and is cancelled.
    "REQUEST_CLEANUP_TIMEOUT": 10.0,
    "FAST_PATH": True,
    "CONFIGURATION": None,
}
"""Every key with a default. ``CONTAINER`` has none: it must be set (``None`` is allowed)."""

KEYS: Final = frozenset({"CONTAINER", *DEFAULTS})

TIMEOUTS: Final = {
    "STARTUP_TIMEOUT": "E003",
    "SHUTDOWN_TIMEOUT": "E004",
    "HEALTH_CHECK_TIMEOUT": "E008",
    "REQUEST_CLEANUP_TIMEOUT": "E014",
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
    request_cleanup_timeout: float = DEFAULTS["REQUEST_CLEANUP_TIMEOUT"]

    @property
    def startup(self) -> Limit:
        """``STARTUP_TIMEOUT`` as a limit named after the setting."""
        return _limit("STARTUP_TIMEOUT", self.startup_timeout)

    @property
    def shutdown(self) -> Limit:
        """``SHUTDOWN_TIMEOUT`` as a limit named after the setting."""
        return _limit("SHUTDOWN_TIMEOUT", self.shutdown_timeout)

    @property
    def request_cleanup(self) -> Limit:
        """``REQUEST_CLEANUP_TIMEOUT`` as a limit named after the setting."""
        return _limit("REQUEST_CLEANUP_TIMEOUT", self.request_cleanup_timeout)


def _limit(key: str, seconds: float) -> Limit:
    return Limit(seconds, f'{SETTING}["{key}"] ({seconds:g} s)')


def raw() -> Any:
    """The setting as the project wrote it (``{}`` when it is missing)."""
    return getattr(settings, SETTING, {})


def problems() -> list[Problem]:
    """Everything wrong with the timeouts and the shape of the setting."""
    value = raw()
    if not isinstance(value, dict):
        return [
            Problem(
                check_id("E001"),
                f"settings.{SETTING} must be a dict, not {type(value).__name__}.",
                f'Write {SETTING} = {{"CONTAINER": "myproject.containers.Container"}}.',
            )
        ]
    found: list[Problem] = []
    unknown = sorted(map(str, set(value) - KEYS))
    if unknown:
        found.append(
            Problem(
                check_id("E002"),
                f"settings.{SETTING} has unknown keys: {', '.join(unknown)}.",
                f"The keys are {', '.join(sorted(KEYS))}; check the spelling.",
            )
        )
    for key, code in TIMEOUTS.items():
        timeout = value.get(key, DEFAULTS[key])
        if not positive_number(timeout):
            found.append(_seconds_problem(key, code, timeout, "a positive number"))
    for key, code in NON_NEGATIVE.items():
        seconds = value.get(key, DEFAULTS[key])
        if not non_negative_number(seconds):
            found.append(_seconds_problem(key, code, seconds, "a number (0 or more)"))
    fast = value.get("FAST_PATH", True)
    if not isinstance(fast, bool):
        found.append(
            Problem(
                check_id("E017"),
                f"settings.{SETTING}['FAST_PATH'] must be True or False, not {_short_repr(fast)}.",
                "Set it to False for Django's own request path (a thread for every "
                "request), or remove it for the default (True).",
            )
        )
    found += configuration_problems(value.get("CONFIGURATION"))
    return found


def _seconds_problem(key: str, code: str, value: object, what: str) -> Problem:
    return Problem(
        check_id(code),
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
                check_id("E010"),
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
                    check_id("E010"),
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
        request_cleanup_timeout=float(value["REQUEST_CLEANUP_TIMEOUT"]),
    )


def request_cleanup_limit() -> Limit:
    """``REQUEST_CLEANUP_TIMEOUT`` as a limit, read once until the setting changes.

    Asked for by every request that opened request-scoped resources; a bad value
    falls back to the default, and the checks report it (E014).
    """
    limit = _READ.limit
    if limit is None:  # read again after a change of the setting
        value = raw()
        seconds = value.get("REQUEST_CLEANUP_TIMEOUT") if isinstance(value, dict) else None
        if not positive_number(seconds):
            seconds = DEFAULTS["REQUEST_CLEANUP_TIMEOUT"]
        limit = _READ.limit = _limit("REQUEST_CLEANUP_TIMEOUT", float(seconds))  # type: ignore[arg-type]
    return limit


def fast_path() -> bool:
    """``FAST_PATH``, read once until the setting changes.

    A bad value counts as the default, and the checks report it (E017).
    """
    fast = _READ.fast
    if fast is None:
        value = raw()
        given = value.get("FAST_PATH", True) if isinstance(value, dict) else True
        fast = _READ.fast = given if isinstance(given, bool) else True
    return fast


class _Remembered:
    """What requests read of the setting, as last read; forgotten when it changes."""

    limit: Limit | None = None
    fast: bool | None = None

    def forget(self, *, setting: str, **kwargs: object) -> None:  # noqa: ARG002
        if setting == SETTING:
            self.limit = self.fast = None


_READ: Final = _Remembered()
setting_changed.connect(_READ.forget, weak=False, dispatch_uid="lifespan_container.cleanup")


def setting_problems() -> list[Problem]:
    """Everything wrong with ``LIFESPAN_CONTAINER``: its shape, timeouts and container."""
    return [*problems(), *container_problems()]


def container_problems() -> list[Problem]:
    """What is wrong with ``LIFESPAN_CONTAINER["CONTAINER"]`` (empty when it loads)."""
    value = raw()
    if not isinstance(value, dict):
        return []  # reported by problems() as E001
    if "CONTAINER" not in value:
        return [
            Problem(
                check_id("E005"),
                f'settings.{SETTING}["CONTAINER"] is not set.',
                "Set it to the dotted path of your container class, e.g. "
                '"myproject.containers.Container", or to None to use only the lifespan '
                "signals.",
            )
        ]
    path = value["CONTAINER"]
    if path is None:
        return []
    try:
        load_container_class(path)
    except ContainerSettingError as exc:
        return [exc.problem]
    return []


class ContainerSettingError(ImproperlyConfigured):
    """``LIFESPAN_CONTAINER["CONTAINER"]`` does not name a container class."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def load_container_class(path: object) -> type[containers.DeclarativeContainer]:
    """Import the container class named by ``path``, or raise ``ContainerSettingError``."""
    setting = f'settings.{SETTING}["CONTAINER"]'
    example = 'e.g. "myproject.containers.Container"'
    if not isinstance(path, str):
        raise ContainerSettingError(
            Problem(
                check_id("E006"),
                f"{setting} must be a dotted path string, not {type(path).__name__}.",
                f"Write the dotted path of your container class as a string, {example}.",
            )
        )
    try:
        loaded: object = import_string(path)
    except ImportError as exc:
        raise ContainerSettingError(
            Problem(
                check_id("E006"),
                f"{setting} = {path!r} cannot be imported: {redact(str(exc))}",
                f"Check the module and class name ({example}); the module must be "
                "importable from the project.",
            )
        ) from exc
    except Exception as exc:
        raise ContainerSettingError(
            Problem(
                check_id("E006"),
                f"{setting} = {path!r} cannot be imported: importing it raised "
                f"{describe_error(exc)}{where_raised(exc)}.",
                "Fix the error in the container's module (it runs when the module is "
                "imported), then run manage.py check again.",
            )
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, containers.DeclarativeContainer)):
        raise ContainerSettingError(
            Problem(
                check_id("E007"),
                f"{setting} = {path!r} is {loaded!r}, not a subclass of "
                "dependency_injector.containers.DeclarativeContainer.",
                "Point it at your container class: "
                "class Container(containers.DeclarativeContainer): ...",
            )
        )
    return loaded
