"""The system checks: what ``manage.py check`` reports, with the fix.

Every check id, and what it reports, is listed once, in
:data:`lifespan_container._settings.CHECKS`; the settings reference shows the
same list.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from dependency_injector import containers, providers
from dependency_injector import errors as di_errors
from django.core.checks import CheckMessage, Error
from django.urls import URLPattern, URLResolver, get_resolver

from lifespan_container._configuration import configuration_problems
from lifespan_container._injected import injected_functions
from lifespan_container._markers import (
    find_provider,
    foreign_inject_message,
    foreign_injections,
    has_markers,
    paths_of,
    refuse_foreign_injections,
)
from lifespan_container._redact import describe_error, get_logger, where_raised
from lifespan_container._request_scope import app_scoped_problems
from lifespan_container._runtime import get_runtime
from lifespan_container._settings import check_id, setting_problems

logger = get_logger("lifespan_container")


def check_settings(**kwargs: Any) -> list[CheckMessage]:  # noqa: ARG001
    """Report every problem with ``settings.LIFESPAN_CONTAINER``."""
    return [Error(problem.msg, hint=problem.hint, id=problem.id) for problem in setting_problems()]


def check_configuration(**kwargs: Any) -> list[CheckMessage]:  # noqa: ARG001
    """Report what the container cannot do: E011, E012 (configuration), E013 (a cycle)."""
    if setting_problems():
        return []  # the settings checks report why the container cannot load
    runtime = get_runtime()
    if runtime.container is None:
        return []
    found: list[CheckMessage] = [
        Error(problem.msg, hint=problem.hint, id=problem.id)
        for problem in configuration_problems(runtime.container)
    ]
    cycles = runtime.lifecycle.cycles if runtime.lifecycle is not None else {}
    found += [
        Error(
            f"Resource {name!r} depends on itself: {' -> '.join(path)}, so it can never open.",
            hint="Break the cycle: no provider a resource needs may need that resource.",
            obj=name,
            id=check_id("E013"),
        )
        for name, path in cycles.items()
    ]
    return found


def check_request_scope(**kwargs: Any) -> list[CheckMessage]:  # noqa: ARG001
    """Report app-scoped providers that depend on a request: E015, E016."""
    if setting_problems():
        return []  # the settings checks report why the container cannot load
    container = get_runtime().container
    if container is None:
        return []
    return [
        Error(
            message,
            hint=(
                "Make it request-scoped too (a RequestResource or a Factory), or pass the "
                "request-scoped value as an argument where it is used."
                if code == "E015"
                else "Only request-scoped providers (a RequestResource or a Factory) may "
                "use CurrentRequest(); pass the request as an argument otherwise."
            ),
            obj=path,
            id=check_id(code),
        )
        for code, path, message in app_scoped_problems(paths_of(container))
    ]


def check_injections(**kwargs: Any) -> list[CheckMessage]:  # noqa: ARG001
    """Report ``Provide[...]`` markers that cannot work: E101 and E102.

    The URLconf is imported first, so that every routed view module (and the
    ``@inject`` decorators in it) has run.
    """
    if setting_problems():
        return []  # the settings checks report why the container cannot load
    try:
        routed = list(_routed_views())
    except Exception as exc:  # noqa: BLE001 (reported as a check error, with where it failed)
        return [] if _url_check_reports_imports() else [_urlconf_error(exc)]
    errors: list[CheckMessage] = []
    container = get_runtime().container
    errors += _marker_errors(container)
    for where, function in routed:
        if refuse_foreign_injections(function, where):
            errors.append(
                Error(
                    foreign_inject_message(where),
                    hint="from lifespan_container import inject, and decorate the view with "
                    "it instead.",
                    obj=where,
                    id=check_id("E103"),
                )
            )
        elif not hasattr(function, "__lifespan_injected__") and has_markers(function):
            errors.append(
                Error(
                    f"The view {where} declares Provide[...] markers but is not decorated "
                    "with @inject: it would receive the marker objects instead of the "
                    "resources.",
                    hint="Add @lifespan_container.inject directly on the function (under "
                    "@api_view, @action or method_decorator, where those are used).",
                    obj=where,
                    id=check_id("E102"),
                )
            )
    return errors


def refuse_foreign_views() -> list[str]:
    """Make routed views still decorated with dependency-injector's ``@inject`` refuse calls.

    Run at the lifespan startup, so that such a view raises
    :class:`~lifespan_container.exceptions.InjectionError` saying what to replace
    instead of failing on a marker object. Imports the URLconf; if that fails, the
    error is logged and requests will report it as Django does. Returns the views.
    """
    try:
        routed = list(_routed_views())
    except Exception:
        logger.exception("The URLconf cannot be imported; every request will fail.")
        return []
    refused = [where for where, function in routed if refuse_foreign_injections(function, where)]
    for where in refused:
        logger.error("%s", foreign_inject_message(where))
    return refused


def report_urlconf_import_errors() -> None:
    """Make Django's URL check report a URLconf that fails to import as E104.

    Django's own ``check_url_config`` lets the import error escape, so
    ``manage.py check`` ends in a traceback before any check is listed (a
    ``Provide[Container.typo]`` in a view module does that). Registered in its
    place, this wrapper runs it unchanged and turns such an error into E104,
    naming the file and line.
    """
    from django.core.checks import Tags  # noqa: PLC0415
    from django.core.checks import urls as url_checks  # noqa: PLC0415
    from django.core.checks.registry import registry  # noqa: PLC0415

    reporter: object = url_checks.check_url_config
    for original in list(registry.registered_checks):
        tags = getattr(original, "tags", ())
        if Tags.urls not in tags or hasattr(original, "__lifespan_reports_imports__"):
            continue
        registry.registered_checks.discard(original)
        registry.register(_reporting(original, report=original is reporter), *tags)


def _reporting(check: Callable[..., Any], *, report: bool) -> Callable[..., list[CheckMessage]]:
    """``check``, with an error importing the URLconf as E104 (once: ``report``) or nothing."""

    @functools.wraps(check)
    def run(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
        try:
            return list(check(app_configs, **kwargs))
        except Exception as exc:
            if not _urlconf_fails_to_import():
                raise  # a failure of the check itself is Django's to show, as before
            return [_urlconf_error(exc)] if report else []

    run.__lifespan_reports_imports__ = True  # type: ignore[attr-defined]
    return run


def _urlconf_fails_to_import() -> bool:
    try:
        get_resolver().url_patterns  # noqa: B018 (imports the URLconf)
    except Exception:  # noqa: BLE001 (any error importing it counts)
        return True
    return False


def _url_check_reports_imports() -> bool:
    from django.core.checks.registry import registry  # noqa: PLC0415

    return any(hasattr(c, "__lifespan_reports_imports__") for c in registry.registered_checks)


def _urlconf_error(exc: Exception) -> CheckMessage:
    """E104: importing the URLconf raised; name the module and line that did."""
    place = where_raised(exc, skip=("/django/", "/lifespan_container/"), line=True)
    hint = "Fix the error where it is raised, then run manage.py check again."
    obj = getattr(exc, "obj", None)
    if isinstance(obj, type) and issubclass(obj, containers.DeclarativeContainer):
        hint = (
            "A Provide[Container.name] marker names an attribute the container class does "
            "not have: check the spelling against the providers declared in the container."
        )
    return Error(
        f"The URLconf cannot be imported, so the views cannot be checked: "
        f"{describe_error(exc)}{place}.",
        hint=hint,
        obj=str(getattr(exc, "name", "") or type(exc).__name__),
        id=check_id("E104"),
    )


def _marker_errors(container: containers.Container | None) -> list[CheckMessage]:
    """E101 for markers naming no provider; E012 for required options with no value."""
    errors: list[CheckMessage] = []
    for spec in injected_functions():
        for name, _, marker in spec.markers:
            provider = find_provider(container, marker.target) if container else None
            if provider is not None and _is_required_option(marker.target):
                try:
                    provider()
                except di_errors.Error as exc:
                    errors.append(
                        Error(
                            f"{marker!r} on parameter {name!r} of {spec.where}: {exc}.",
                            hint="Give the option a value (see settings.LIFESPAN_CONTAINER"
                            '["CONFIGURATION"]), or drop .required().',
                            obj=spec.where,
                            id=check_id("E012"),
                        )
                    )
            if provider is None:
                errors.append(
                    Error(
                        spec.unresolved(name, marker, container)
                        if container is not None
                        else f"@inject on {spec.where} needs a container, and "
                        'settings.LIFESPAN_CONTAINER["CONTAINER"] is None.',
                        hint="Name a provider of the container in Provide[...].",
                        obj=spec.where,
                        id=check_id("E101"),
                    )
                )
    return errors


def _is_required_option(target: object) -> bool:
    if isinstance(target, providers.TypedConfigurationOption):
        target = target.option
    return isinstance(target, providers.ConfigurationOption) and target.is_required()


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
        if foreign_injections(method):
            continue  # dependency-injector's wrapper: the function inside is its own
        # @api_view wraps the function in a closure: look inside it too.
        for cell in getattr(method, "__closure__", None) or ():
            inner = cell.cell_contents
            if inspect.isfunction(inner):
                yield _name(inner), inner


def _name(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
