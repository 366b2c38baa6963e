"""The container of this process: loaded once from settings, with its lifecycle."""

from __future__ import annotations

import functools
import traceback
from typing import Any, Literal

from dependency_injector import containers, providers
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from lifespan_container._redact import describe_error, redact
from lifespan_container.conf import SETTING, Problem, problems, raw
from lifespan_container.exceptions import LifespanContainerError
from lifespan_container.lifecycle import ResourceLifecycle, provider_paths
from lifespan_container.signals import send_resource_event

APP = "lifespan_container"

Phase = Literal["idle", "starting", "serving", "stopping", "stopped"]
"""Where this process is in its lifespan: ``idle`` until a lifespan startup begins."""

_current: Runtime | None = None
"""The runtime of this process; read on every injected call, so kept in a global."""


def setting_problems() -> list[Problem]:
    """Everything wrong with ``LIFESPAN_CONTAINER``: its shape, timeouts and container."""
    return [*problems(), *container_problems()]


def container_problems() -> list[Problem]:
    """What is wrong with ``LIFESPAN_CONTAINER["CONTAINER"]`` (empty when it loads)."""
    value = raw()
    if not isinstance(value, dict):
        return []  # reported by conf.problems() as E001
    if "CONTAINER" not in value:
        return [
            Problem(
                "lifespan_container.E005",
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
                "lifespan_container.E006",
                f"{setting} must be a dotted path string, not {type(path).__name__}.",
                f"Write the dotted path of your container class as a string, {example}.",
            )
        )
    try:
        loaded: object = import_string(path)
    except ImportError as exc:
        raise ContainerSettingError(
            Problem(
                "lifespan_container.E006",
                f"{setting} = {path!r} cannot be imported: {redact(str(exc))}",
                f"Check the module and class name ({example}); the module must be "
                "importable from the project.",
            )
        ) from exc
    except Exception as exc:
        raise ContainerSettingError(
            Problem(
                "lifespan_container.E006",
                f"{setting} = {path!r} cannot be imported: importing it raised "
                f"{describe_error(exc)}{_where(exc)}.",
                "Fix the error in the container's module (it runs when the module is "
                "imported), then run manage.py check again.",
            )
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, containers.DeclarativeContainer)):
        raise ContainerSettingError(
            Problem(
                "lifespan_container.E007",
                f"{setting} = {path!r} is {loaded!r}, not a subclass of "
                "dependency_injector.containers.DeclarativeContainer.",
                "Point it at your container class: "
                "class Container(containers.DeclarativeContainer): ...",
            )
        )
    return loaded


def _where(exc: BaseException) -> str:
    """`` at file:line`` of the innermost frame that raised ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


class Runtime:
    """The process's container, the lifecycle of its resources, and its lifespan phase."""

    def __init__(self, container: containers.Container | None) -> None:
        self.container = container
        self.lifecycle = (
            ResourceLifecycle(
                container,
                listener=functools.partial(send_resource_event, container_class(container)),
            )
            if container is not None
            else None
        )
        self.phase: Phase = "idle"
        """Set by the lifespan: ``starting``, ``serving`` (startup completed),
        ``stopping`` (shutdown began), ``stopped``. Readiness is ``serving``."""
        self._class_overrides = _overrides_of(_class_providers(container))
        self.lifespans = 0
        """How many lifespan startups began on this runtime (test helpers compare it)."""

    def overrides(self) -> Overrides:
        """What overrides every provider of the container now (to :meth:`restore` later)."""
        return _overrides_of(_providers(self.container))

    def restore(self, saved: Overrides) -> None:
        """Undo every override put on the container's providers since ``saved`` was taken.

        Test helpers call it at the end of a test, so that
        ``get_container().x.override(fake)`` does not leak into the next one.
        """
        _undo_since(saved)

    def class_overrides(self) -> Overrides:
        """What overrides each provider of the container *class* now (for a comparison)."""
        return _overrides_of(_class_providers(self.container))

    def refuse_class_overrides(self, since: Overrides | None = None) -> None:
        """Raise if a provider of the container *class* was overridden since ``since``.

        ``since`` defaults to the last time this was asked (first: when the container
        was created). ``Container.http.override(fake)`` on the class after that does
        not reach the container this process made from it (dependency-injector
        copies the providers): the views would silently get the real value. Such an
        override is reported once, by
        :class:`~lifespan_container.exceptions.LifespanContainerError` saying what to
        write instead; it is left in place (it is the caller's to undo). Overrides
        made on the class before the container was created reach it, and removing an
        override is never reported.
        """
        before = self._class_overrides if since is None else since
        self._class_overrides = self.class_overrides()
        grown = [
            path
            for path, (provider, now) in self._class_overrides.items()
            if path in before and _grew(before[path][1], now)
        ]
        if not grown:
            return
        parent = container_class(self.container) if self.container is not None else object
        names = ", ".join(f"{parent.__qualname__}.{path}" for path in grown)
        msg = (
            f"{names} was overridden on the container class after this process created its "
            "container from it, so the running container never sees the override (the "
            "views would get the real value). Override the running container instead: "
            "lifespan_container.testing.override(Container.x, fake) (or the `overrides` / "
            "`lifespan_overrides` pytest fixtures), or get_container().x.override(fake)."
        )
        raise LifespanContainerError(msg)


def _grew(before: tuple[object, ...], now: tuple[object, ...]) -> bool:
    """Whether overrides were stacked on ``before`` (and it is still underneath)."""
    return len(now) > len(before) and now[: len(before)] == before


Overrides = dict[str, tuple[providers.Provider[Any], tuple[providers.Provider[Any], ...]]]
"""Each provider's path -> ``(provider, what overrode it)``, as a snapshot."""


def _providers(container: containers.Container | None) -> dict[providers.Provider[Any], str]:
    return provider_paths(container.providers) if container is not None else {}


def _class_providers(container: containers.Container | None) -> dict[providers.Provider[Any], str]:
    parent = getattr(container, "declarative_parent", None)
    return provider_paths(parent.providers) if parent is not None else {}


def _overrides_of(found: dict[providers.Provider[Any], str]) -> Overrides:
    return {
        path: (provider, provider.overridden)
        for provider, path in found.items()
        if not isinstance(provider, providers.ConfigurationOption)  # kept on the root
    }


def _undo_since(saved: Overrides) -> None:
    for provider, before in saved.values():
        while len(provider.overridden) > len(before):
            provider.reset_last_overriding()


def container_class(container: containers.Container) -> type:
    """The declarative class ``container`` was made from (or its own type)."""
    parent: type | None = getattr(container, "declarative_parent", None)
    return parent or type(container)


def load_runtime() -> Runtime:
    """Instantiate the container named in settings (``None`` allowed) with its lifecycle.

    Its configurations get their values from settings (see
    :mod:`lifespan_container.configuration`) before anything can use them.
    """
    from lifespan_container.configuration import fill_configuration  # noqa: PLC0415

    value: Any = raw()
    path = value.get("CONTAINER") if isinstance(value, dict) else None
    if path is None:
        return Runtime(None)
    container = load_container_class(path)()
    fill_configuration(container)
    return Runtime(container)


def get_runtime() -> Runtime:
    """The runtime of this process, loaded once: on first use, or when the app is ready.

    Whichever comes first creates it; the other finds it. So an app listed before
    ``lifespan_container`` may call ``get_container()`` in its ``ready()``, and
    what it sets on the container stays.
    """
    if _current is None:
        if not apps.apps_ready:
            msg = (
                "get_container() was called while Django was still importing the apps "
                "(at the import of settings, an app module or a models module), before "
                "the container can be created. Call it inside a function, in an "
                "AppConfig.ready() method, or later: the container is created once per "
                "process, on first use once the apps are loaded."
            )
            raise ImproperlyConfigured(msg)
        require_installed()
        set_runtime(load_runtime())
    assert _current is not None  # noqa: S101 (set_runtime just set it)
    return _current


def current_runtime() -> Runtime | None:
    """The runtime if one was loaded or installed, without loading one."""
    return _current


def checked_runtime() -> Runtime:
    """The runtime, after refusing a broken setting or a missing app with the fix."""
    require_installed()
    found = setting_problems()
    if found:
        raise ImproperlyConfigured(" ".join(map(str, found)))
    return get_runtime()


def require_installed() -> None:
    """Raise ``ImproperlyConfigured`` unless the app is in ``INSTALLED_APPS``."""
    if not apps.is_installed(APP):
        msg = (
            f"'{APP}' is not in INSTALLED_APPS. Add it there: the app loads the container "
            "named in settings.LIFESPAN_CONTAINER and registers the system checks."
        )
        raise ImproperlyConfigured(msg)


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Make ``runtime`` the process's runtime; return the previous one.

    The app calls it once when Django is ready; test helpers use it to swap in
    another container and put the previous one back.
    """
    global _current
    previous, _current = _current, runtime
    if previous is not runtime:
        # Injected views resolved their markers against the previous container.
        from lifespan_container.injection import forget_resolutions  # noqa: PLC0415

        forget_resolutions()
    return previous


def get_container() -> containers.Container:
    """The container of this process, as named in ``LIFESPAN_CONTAINER["CONTAINER"]``.

    It is instantiated once, when Django loads its apps. Its resources are open
    between the lifespan startup and shutdown; outside of them, asking a resource
    provider for its value raises :class:`~lifespan_container.exceptions.ResourcesNotStartedError`.
    """
    container = get_runtime().container
    if container is None:
        msg = (
            f'settings.{SETTING}["CONTAINER"] is None, so this project has no container. '
            "Set it to the dotted path of your container class, e.g. "
            '"myproject.containers.Container".'
        )
        raise ImproperlyConfigured(msg)
    return container
