"""The runtime of this process: its container, loaded once from settings, with its lifespan.

Public through :mod:`lifespan_container.runtime`. The Django layer's advice for
the engine's errors (which servers send the lifespan, which test clients keep
one event loop) is given here, where the lifecycle is made.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from typing import TYPE_CHECKING, Any, Final

from dependency_injector import containers, providers
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from lifespan_container._configuration import fill_configuration
from lifespan_container._dispatch import send_resource_event
from lifespan_container._settings import SETTING, load_container_class, raw, setting_problems
from lifespan_container.engine.graph import provider_paths
from lifespan_container.engine.guard import Advice
from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.lifespan import Lifespan, Phase
from lifespan_container.exceptions import LifespanContainerError

if TYPE_CHECKING:
    from collections.abc import Callable

    from lifespan_container.engine.request_scope import RequestScope

__all__ = ["Runtime", "get_container", "get_runtime"]

APP = "lifespan_container"

ADVICE: Final = Advice(
    not_open=(
        "Serve the project with an ASGI server that sends the lifespan (uvicorn with "
        "--lifespan on, not --lifespan off; gunicorn with uvicorn's worker, hypercorn, "
        "granian; daphne and WSGI runserver send none); in development, use `python "
        "manage.py runasgi`. In tests, run the code inside "
        "lifespan_container.testing.lifespan() or override the provider."
    ),
    wrong_loop=(
        "Django's sync test Client and WSGI runserver run each async view in a new event "
        "loop: use django.test.AsyncClient or the httpx client from "
        "lifespan_container.testing, or override the provider in the test; serve with an "
        "ASGI server that sends the lifespan."
    ),
    wrong_thread=(
        "(a sync view under WSGI runserver or Django's sync test Client, or a thread of "
        "your own). Under an ASGI server, sync views run in threads that can reach it: "
        "call the resource there through asgiref.sync.async_to_sync. In tests, use "
        "django.test.AsyncClient or override the provider."
    ),
    already_open=(
        "In tests, nest neither lifespan() nor lifespan_client() inside the `lifespan` "
        "fixture (use its asgi_client), nor two lifespans in one test."
    ),
)
"""What to do, added to the engine's errors: Django's servers and test clients."""


class _Process:
    """The runtime of this process, and who wants to know when it is swapped."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.on_swap: list[Callable[[], None]] = []


_PROCESS: Final = _Process()


class Runtime:
    """The process's container, the lifecycle of its resources, and its lifespan.

    The ``lifespan_container`` app makes one per process from
    ``LIFESPAN_CONTAINER["CONTAINER"]`` (see :func:`get_runtime`); tests install
    another with :func:`lifespan_container.testing.use_container`.
    """

    def __init__(self, container: containers.Container | None) -> None:
        self.container = container
        """The container (``None`` when ``CONTAINER`` is ``None``)."""
        self.lifecycle = (
            ResourceLifecycle(
                container,
                listener=functools.partial(send_resource_event, container_class(container)),
                advice=ADVICE,
            )
            if container is not None
            else None
        )
        """Opens and closes the container's resources (``None`` without a container)."""
        self.lifespan = Lifespan(self.lifecycle, ADVICE)
        """The lifespan the ASGI handler drives: its phase, startup and shutdown."""
        self._class_overrides = _overrides_of(_class_providers(container))
        self.lifespans = 0
        """How many lifespan startups began on this runtime (test helpers compare it)."""
        self._request_scoped: bool | None = None
        self.request_closes: set[asyncio.Task[None]] = set()
        """Request scopes being closed in the background (a test client closed the
        response on the event loop's thread); the test helpers wait for them."""
        self.open_scopes: set[RequestScope] = set()
        """Request scopes of requests our handler does not serve (test clients, direct
        calls), until their response closes them; the lifespan's end closes the rest."""
        self.requests: collections.Counter[asyncio.Task[Any]] = collections.Counter()
        """The server's tasks serving requests now (with how many calls of the handler
        each runs: one may call it again); the lifespan shutdown waits for them before
        closing the resources."""
        self.request_views: dict[asyncio.Task[Any], asyncio.Task[Any]] = {}
        """Django 5.2: the task running a request's view, by the server's task."""
        self.kept_state: dict[str, Any] | None = None
        """The lifespan managers' state, kept by the handler when the server gave the
        lifespan none; copied into each request's scope that has no state."""

    @property
    def request_scoped(self) -> bool:
        """Whether the container declares a ``RequestResource`` or ``CurrentRequest()``."""
        if self._request_scoped is None:
            from lifespan_container.per_request import (  # noqa: PLC0415
                CurrentRequest,
                RequestResource,
            )

            found = provider_paths(self.container.providers) if self.container else {}
            self._request_scoped = any(
                isinstance(provider, RequestResource | CurrentRequest) for provider in found
            )
        return self._request_scoped

    @property
    def phase(self) -> Phase:
        """Where the lifespan is: ``idle`` until a startup begins.

        Then ``starting``, ``serving`` (startup completed), ``stopping`` (shutdown
        began), ``stopped``. Readiness is ``serving``.
        """
        return self.lifespan.phase

    def overrides(self) -> Overrides:
        """What overrides every provider of the container now (to :meth:`restore` later)."""
        return self.snapshot(self.container)

    @staticmethod
    def snapshot(container: containers.Container | None) -> Overrides:
        """What overrides every provider of ``container`` now."""
        return _overrides_of(_providers(container))

    @staticmethod
    def restore_snapshot(saved: Overrides) -> None:
        """Undo every override put on the providers since ``saved`` was taken."""
        _undo_since(saved)

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
    :mod:`lifespan_container._configuration`) before anything can use them.
    """
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
    if _PROCESS.runtime is None:
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
    assert _PROCESS.runtime is not None  # noqa: S101 (set_runtime just set it)
    return _PROCESS.runtime


def current_runtime() -> Runtime | None:
    """The runtime if one was loaded or installed, without loading one."""
    return _PROCESS.runtime


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
    previous, _PROCESS.runtime = _PROCESS.runtime, runtime
    if previous is not runtime:
        for callback in list(_PROCESS.on_swap):
            callback()
    return previous


def on_swap(callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the process's runtime is swapped for another.

    ``@inject`` forgets the markers it resolved against the previous container.
    """
    if callback not in _PROCESS.on_swap:
        _PROCESS.on_swap.append(callback)


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
