"""System checks for ``settings.LIFESPAN_CONTAINER``.

=========================  ==========================================================
``lifespan_container.E001``  the setting is not a dict
``lifespan_container.E002``  the setting has unknown keys (a typo)
``lifespan_container.E003``  ``STARTUP_TIMEOUT`` is not a positive number
``lifespan_container.E004``  ``SHUTDOWN_TIMEOUT`` is not a positive number
``lifespan_container.E005``  ``CONTAINER`` is not set
``lifespan_container.E006``  ``CONTAINER`` is not a string, or does not import
``lifespan_container.E007``  ``CONTAINER`` is not a ``DeclarativeContainer`` subclass
``lifespan_container.E008``  ``HEALTH_CHECK_TIMEOUT`` is not a positive number
``lifespan_container.E101``  an ``@inject`` marker names no provider of the container
``lifespan_container.E102``  a routed view declares ``Provide[...]`` without ``@inject``
=========================  ==========================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from django.core.checks import CheckMessage, Error
from django.urls import URLPattern, URLResolver, get_resolver

from lifespan_container._runtime import get_runtime, setting_problems
from lifespan_container.injection import find_provider, has_markers, injected_functions


def check_settings(**kwargs: Any) -> list[CheckMessage]:  # noqa: ARG001
    """Report every problem with ``settings.LIFESPAN_CONTAINER``."""
    return [Error(problem.msg, hint=problem.hint, id=problem.id) for problem in setting_problems()]


def check_injections(**kwargs: Any) -> list[CheckMessage]:  # noqa: ARG001
    """Report ``Provide[...]`` markers that cannot work: E101 and E102.

    The URLconf is imported first, so that every routed view module (and the
    ``@inject`` decorators in it) has run.
    """
    if setting_problems():
        return []  # the settings checks report why the container cannot load
    routed = list(_routed_views())
    errors: list[CheckMessage] = []
    container = get_runtime().container
    for spec in injected_functions():
        for name, _, marker in spec.markers:
            if container is None or find_provider(container, marker.target) is None:
                errors.append(
                    Error(
                        spec.unresolved(name, marker, container)
                        if container is not None
                        else f"@inject on {spec.where} needs a container, and "
                        'settings.LIFESPAN_CONTAINER["CONTAINER"] is None.',
                        hint="Name a provider of the container in Provide[...].",
                        obj=spec.where,
                        id="lifespan_container.E101",
                    )
                )
    for where, function in routed:
        if not hasattr(function, "__lifespan_injected__") and has_markers(function):
            errors.append(
                Error(
                    f"The view {where} declares Provide[...] markers but is not decorated "
                    "with @inject: it would receive the marker objects instead of the "
                    "resources.",
                    hint="Add @lifespan_container.inject directly on the function (under "
                    "@api_view, @action or method_decorator, where those are used).",
                    obj=where,
                    id="lifespan_container.E102",
                )
            )
    return errors


def _routed_views() -> Iterator[tuple[str, Callable[..., Any]]]:
    """``(dotted name, function)`` for every function that serves a URL."""
    seen: set[int] = set()
    for callback in _callbacks(get_resolver().url_patterns):
        for where, function in _functions_of(callback):
            if id(function) not in seen:
                seen.add(id(function))
                yield where, function


def _callbacks(patterns: list[Any]) -> Iterator[Callable[..., Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def _functions_of(callback: Callable[..., Any]) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The functions a URL callback runs: itself, or its class's handler methods."""
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        yield _name(callback), callback
        return
    names = set(getattr(view_class, "http_method_names", ()))
    names.update((getattr(callback, "actions", None) or {}).values())
    for name in sorted(names):
        method = inspect.getattr_static(view_class, name, None)
        if not callable(method) or hasattr(method, "__lifespan_injected__"):
            continue
        yield f"{_name(view_class)}.{name}", method
        # @api_view wraps the function in a closure: look inside it too.
        for cell in getattr(method, "__closure__", None) or ():
            inner = cell.cell_contents
            if inspect.isfunction(inner):
                yield _name(inner), inner


def _name(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
