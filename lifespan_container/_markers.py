"""``Provide[...]`` markers: finding them in signatures, resolving them in a container.

What ``@inject`` (:mod:`lifespan_container.injection`) and the system checks
share: the marker object, how a signature's markers are read, which provider of
the running container a marker names (typed and required configuration options
included), and how a view still decorated with dependency-injector's own
``@inject`` is detected and made to refuse its calls.
"""

from __future__ import annotations

import difflib
import inspect
import sys
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    NoReturn,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

from dependency_injector import providers, wiring

from lifespan_container.engine.graph import configuration_of, provider_paths, walk
from lifespan_container.exceptions import InjectionError, MarkerUsedError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dependency_injector import containers


class Marker:
    """What ``Provide[...]`` evaluates to: the provider (or its dotted name) to inject.

    Used as a value (a function without ``@inject`` received it), it raises
    :class:`MarkerUsedError` saying so, instead of a puzzling ``AttributeError``.
    """

    __slots__ = ("target",)

    def __init__(self, target: providers.Provider[Any] | str) -> None:
        self.target = target

    def __repr__(self) -> str:
        if isinstance(self.target, str):
            return f"Provide[{self.target!r}]"
        return f"Provide[{_describe_provider(self.target)}]"

    def _misused(self, *args: object, **kwargs: object) -> Any:  # noqa: ARG002
        msg = (
            f"{self!r} was used as a value: the function that declares it is not decorated "
            "with @lifespan_container.inject, so it received the marker instead of the "
            "resource. Decorate it (directly, under @api_view or @action); if it is decorated "
            "with dependency_injector.wiring.inject, replace that with lifespan_container.inject."
        )
        raise MarkerUsedError(msg)

    def __getattr__(self, name: str) -> Any:
        return self._misused()

    __call__ = __await__ = __aenter__ = __enter__ = __iter__ = _misused


def suggest(container: containers.Container, target: providers.Provider[Any] | str) -> str:
    """Name the container's providers closest to what ``target`` seems to mean."""
    parent = getattr(container, "declarative_parent", None) or type(container)
    names = sorted(set(paths_of(container).values()))
    if not names:
        return f"{parent.__qualname__} declares no providers: declare one, then name it here."
    wanted = target if isinstance(target, str) else _label(target)
    ranked = difflib.get_close_matches(wanted, names, n=3, cutoff=0.0)
    shown = ", ".join(f"Provide[{parent.__qualname__}.{path}]" for path in ranked)
    return (
        f"Name one of its providers, e.g. {shown}, or its dotted name, e.g. Provide[{ranked[0]!r}]."
    )


# dependency-injector declares its markers as protocol instances for type checkers.
_DI_PROVIDE = cast("type[Any]", wiring.Provide)
_DI_CLOSING = cast("type[Any]", wiring.Closing)
_DI_OTHER_MARKERS = (cast("type[Any]", wiring.Provider),)


def marker_of(value: object) -> Marker | None:
    """``value`` as a marker: ours, or dependency-injector's ``Provide[...]``."""
    if isinstance(value, Marker):
        return value
    if isinstance(value, _DI_PROVIDE):
        if getattr(value, "modifier", None) is not None:
            msg = f"Provide[...] with a modifier ({value.modifier!r}) is not supported."
            raise InjectionError(msg)
        return Marker(value.provider)
    if isinstance(value, _DI_CLOSING):
        msg = (
            "Closing[Provide[...]] markers of dependency_injector.wiring are not supported "
            "by lifespan_container.inject. For a value that lives for one request and is "
            "cleaned up after the response, declare it as a RequestResource in the "
            "container (from lifespan_container import RequestResource) and use "
            "Provide[Container.name]: it is opened once per request and closed after the "
            "response was sent."
        )
        raise InjectionError(msg)
    if isinstance(value, _DI_OTHER_MARKERS):
        msg = (
            f"{type(value).__name__}[...] markers of dependency_injector.wiring are not "
            "supported by lifespan_container.inject; use lifespan_container.Provide[...]."
        )
        raise InjectionError(msg)
    return None


def find_markers(func: Callable[..., Any], where: str) -> Iterator[tuple[str, int, Marker]]:
    try:
        hints = get_type_hints(func, include_extras=True)
    except Exception as exc:  # noqa: BLE001 (e.g. names imported only for type checking)
        hints = {}
        unreadable: Exception | None = exc
    else:
        unreadable = None
    parameters = inspect.signature(func).parameters.values()
    for index, parameter in enumerate(parameters):
        position = index if parameter.kind in _POSITIONAL else sys.maxsize
        found = [marker_of(parameter.default)]
        annotation = hints.get(parameter.name, parameter.annotation)
        if get_origin(annotation) is Annotated:
            found += [marker_of(meta) for meta in get_args(annotation)[1:]]
        elif isinstance(annotation, str) and "Provide[" in annotation:
            msg = (
                f"The annotation of parameter {parameter.name!r} of {where} holds a "
                f"Provide marker, and the annotations cannot be evaluated ({unreadable!r}). "
                "Import what the annotation names at runtime, or write the marker as the "
                "default: name: T = Provide[...]."
            )
            raise InjectionError(msg)
        markers = [marker for marker in found if marker is not None]
        if len(markers) > 1:
            msg = f"Parameter {parameter.name!r} of {where} has more than one Provide marker."
            raise InjectionError(msg)
        if markers and parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            msg = (
                f"Parameter {parameter.name!r} of {where} is positional-only, so @inject "
                "cannot pass it by name. Make it a regular or keyword-only parameter."
            )
            raise InjectionError(msg)
        if markers:
            yield parameter.name, position, markers[0]


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def foreign_injections(func: object) -> tuple[str, ...]:
    """Parameters that dependency-injector's own ``@inject`` on ``func`` would leave unwired.

    Such a function passes its ``Provide[...]`` markers on as values: nothing wires
    it (this library never calls ``wire()``). Empty for any other function.
    """
    registry = getattr(wiring, "_patched_registry", None)
    patched = registry.get_callable(func) if registry is not None else None
    if patched is None:
        return ()
    wired = getattr(patched, "injections", {})
    return tuple(
        name
        for name in getattr(patched, "reference_injections", {})
        if name not in wired or getattr(wired[name], "provides", None) is _raise_injection_error
    )


def foreign_inject_message(where: str) -> str:
    """What to do about a view decorated with dependency-injector's ``@inject``."""
    return (
        f"{where} is decorated with dependency_injector.wiring.inject, which passes its "
        "Provide[...] markers on unresolved here: nothing wires it. Replace "
        "dependency_injector.wiring.inject with lifespan_container.inject (the markers can "
        "stay as they are)."
    )


def refuse_foreign_injections(func: object, where: str) -> bool:
    """Make a call of ``func`` raise :class:`InjectionError` saying what to replace.

    For a function decorated with dependency-injector's ``@inject``: instead of a
    marker object that fails later with a puzzling ``AttributeError``, the call
    raises before the function runs. Returns whether ``func`` was such a function.
    """
    names = foreign_injections(func)
    if not names:
        return False
    patched = wiring._patched_registry.get_callable(cast("Callable[..., Any]", func))  # noqa: SLF001
    refuse = providers.Callable(_raise_injection_error, foreign_inject_message(where))
    for name in names:
        patched.add_injection(name, refuse)
    return True


def _raise_injection_error(message: str) -> NoReturn:
    raise InjectionError(message)


def has_markers(func: object) -> bool:
    """Whether ``func`` declares any ``Provide`` marker (for the checks)."""
    if not callable(func):
        return False
    try:
        return bool(tuple(find_markers(func, repr(func))))
    except (InjectionError, TypeError, ValueError):
        return False


# -- resolving providers -----------------------------------------------------------------


def find_provider(
    container: containers.Container, target: providers.Provider[Any] | str
) -> providers.Provider[Any] | None:
    """The provider of ``container`` that ``target`` names, or ``None``.

    ``target`` is a dotted name (``"http"``, ``"infra.db"``), a provider of the
    container's declarative class (``Container.http``), a configuration option
    (``Container.config.api_key``), or a provider of the container itself.
    """
    if isinstance(target, str):
        return walk(container, target)
    paths = paths_of(container)
    path = paths.get(target)
    if path is not None:
        return walk(container, path)
    if isinstance(target, providers.TypedConfigurationOption):
        # Container.config.x.as_int(), .as_float(), .as_(callable), .required().as_int()
        option = find_provider(container, target.option)
        return providers.Callable(target.provides, option) if option is not None else None
    if isinstance(target, providers.ConfigurationOption):
        return _configuration_option(container, target, paths)
    return None


def _configuration_option(
    container: containers.Container,
    target: providers.ConfigurationOption,
    paths: dict[providers.Provider[Any], str],
) -> providers.Provider[Any] | None:
    """The option of ``container``'s own configuration that ``target`` names.

    ``target`` belongs to the container class (``Container.config.db.port``); the
    container instance has a configuration of its own. The option is looked up
    by name in it, so what a test overrides on the instance is what a view gets.
    A ``.required()`` option raises dependency-injector's error when undefined.
    """
    found = _option_path(target, paths)
    if found is None:
        return None
    root = walk(container, found[0])
    if not isinstance(root, providers.Configuration):  # pragma: no cover (found above)
        return None
    if target.is_required():
        return providers.Callable(root.get, found[1], required=True)
    return walk(container, ".".join(found))


def find_option(
    container: containers.Container, target: providers.Provider[Any] | str
) -> providers.ConfigurationOption | None:
    """The running container's own option behind ``target``, for overriding its value.

    ``Container.config.x``, ``.required()`` and ``.as_int()`` all name the option
    ``config.x`` of the container's configuration; anything else gives ``None``.
    """
    if isinstance(target, providers.TypedConfigurationOption):
        target = target.option
    if not isinstance(target, providers.ConfigurationOption):
        return None
    found = _option_path(target, paths_of(container))
    option = walk(container, ".".join(found)) if found is not None else None
    return option if isinstance(option, providers.ConfigurationOption) else None


def _option_path(
    target: providers.ConfigurationOption, paths: dict[providers.Provider[Any], str]
) -> tuple[str, str] | None:
    """``(configuration path, option selector)`` of ``target`` among ``paths``."""
    selector = target.get_name().partition(".")[2]
    roots = {
        path: provider
        for provider, path in paths.items()
        if isinstance(provider, providers.Configuration)
    }
    root_path = configuration_of(target, roots) if selector else None
    return (root_path, selector) if root_path is not None else None


def paths_of(container: containers.Container) -> dict[providers.Provider[Any], str]:
    """Every named provider of the container and of its declarative class -> its path.

    Only markers being resolved ask (once per function and container): no cache.
    """
    paths = provider_paths(container.providers)
    parent = getattr(container, "declarative_parent", None)
    if parent is not None:
        provider_paths(parent.providers, paths=paths)
    return paths


def _label(provider: providers.Provider[Any]) -> str:
    """A name for a provider of another container: its option name or what it provides."""
    if isinstance(provider, providers.TypedConfigurationOption):
        return _label(provider.option)
    if isinstance(provider, providers.ConfigurationOption):
        return provider.get_name()
    provides = getattr(provider, "provides", None)
    return str(getattr(provides, "__name__", None) or type(provider).__name__)


def _describe_provider(provider: providers.Provider[Any]) -> str:
    if isinstance(provider, providers.TypedConfigurationOption):
        kind = getattr(provider.provides, "__name__", repr(provider.provides))
        return f"{_describe_provider(provider.option)}.as_({kind})"
    if isinstance(provider, providers.ConfigurationOption):
        required = ".required()" if provider.is_required() else ""
        return provider.get_name() + required
    provides = getattr(provider, "provides", None)
    label = getattr(provides, "__qualname__", None) if provides is not None else None
    return f"{type(provider).__name__}({label})" if label else type(provider).__name__
