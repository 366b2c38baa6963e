"""``@inject`` and ``Provide``: the container's resources as view parameters.

.. code-block:: python

    @inject
    async def weather(request, http: httpx.AsyncClient = Provide[Container.http]): ...


    @inject
    def report(request, db: Annotated[Pool, Provide[Container.db_pool]]): ...

- No wiring: markers are resolved against the process's container (the one named
  in ``LIFESPAN_CONTAINER["CONTAINER"]``) on the first call, and again only when
  that container is swapped (as test helpers do).
- A marker that cannot be resolved is reported by ``manage.py check``
  (``lifespan_container.E101``) and raises :class:`InjectionError` at the call;
  the marker object itself is never passed to the view.
- An argument the caller passes (by keyword or position) wins over the marker.
- An open ``Resource`` is handed over straight from the lifecycle: no task, no
  ``Future``, no trip through the event loop. Other providers (``Factory``,
  ``Singleton``, ``Configuration`` ...) are called; an awaitable they return is
  awaited in async views.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import inspect
import sys
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Final,
    NoReturn,
    ParamSpec,
    TypeVar,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

from asgiref.sync import iscoroutinefunction
from dependency_injector import providers, wiring

from lifespan_container import _runtime
from lifespan_container.exceptions import InjectionError, MarkerUsedError
from lifespan_container.lifecycle import (
    configuration_of,
    here,
    is_async_result,
    provider_paths,
    walk,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dependency_injector import containers

__all__ = ["Provide", "inject"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


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


class _ProvideMarkers:
    """``Provide[provider]`` is typed as the provider's value, so mypy checks it."""

    @overload
    def __getitem__(self, target: providers.Provider[T]) -> T: ...
    @overload
    def __getitem__(self, target: str) -> Any: ...
    def __getitem__(self, target: object) -> Any:
        if not isinstance(target, providers.Provider | str):
            msg = (
                f"Provide[...] takes a provider of the container (Provide[Container.http]) "
                f"or its dotted name (Provide['http']), not {target!r}."
            )
            raise InjectionError(msg)
        return Marker(target)

    def __repr__(self) -> str:
        return "Provide"


Provide: Final = _ProvideMarkers()
"""Mark a view parameter to receive a provider's value: ``= Provide[Container.http]``."""


_NOT_A_RESOURCE: Final = object()
"""The guard of a provider that is not a lifecycle resource: never the last overriding."""

Resolved = tuple[providers.Provider[Any], object, "dict[str, object]", str, bool, Any]
"""One marker resolved against a runtime: ``(provider, guard, values, resource name,
loop-bound, lifecycle)``. A lifecycle resource that no test overrides is
``values[resource name]``; anything else comes from calling the provider.
"""


class InjectedFunction:
    """What ``@inject`` knows about one function: its markers, and their resolution.

    The markers are read when the function is decorated, so a misplaced marker is
    an error at import time; they are resolved against the process's runtime on
    the first call, and again after the runtime is swapped (see :meth:`forget`).
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.module = getattr(func, "__module__", "?")
        self.qualname = getattr(func, "__qualname__", repr(func))
        self.markers: tuple[tuple[str, int, Marker], ...] = tuple(_find_markers(func, self.where))
        """``(parameter, position, marker)`` for every marked parameter."""
        self._resolved: tuple[Resolved, ...] | None = None
        self._forgets: list[Callable[[], None]] = []

    @property
    def where(self) -> str:
        return f"{self.module}.{self.qualname}"

    def resolve(self) -> tuple[Resolved, ...]:
        """Every marker resolved against the process's runtime (remembered)."""
        if self._resolved is not None:
            return self._resolved
        runtime = _runtime.get_runtime()
        container = runtime.container
        if container is None:
            msg = (
                f"@inject on {self.where} needs a container, and "
                'settings.LIFESPAN_CONTAINER["CONTAINER"] is None. Set it to the dotted path '
                "of your container class."
            )
            raise InjectionError(msg)
        resolved: list[Resolved] = []
        lifecycle = runtime.lifecycle
        for name, _, marker in self.markers:
            provider = find_provider(container, marker.target)
            if provider is None:
                raise InjectionError(self.unresolved(name, marker, container))
            fast = lifecycle.fast_path(provider) if lifecycle else None
            resource, guard, values, loop_bound = fast or ("", _NOT_A_RESOURCE, {}, False)
            resolved.append((provider, guard, values, resource, loop_bound, lifecycle))
        self._resolved = tuple(resolved)
        return self._resolved

    def on_forget(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the resolution is forgotten."""
        self._forgets.append(callback)

    def forget(self) -> None:
        """Resolve again on the next call (the process's runtime was swapped)."""
        self._resolved = None
        for callback in self._forgets:
            callback()

    def unresolved(self, name: str, marker: Marker, container: containers.Container) -> str:
        """The message for a marker that names no provider of ``container``."""
        parent = getattr(container, "declarative_parent", None) or type(container)
        return (
            f"{marker!r} on parameter {name!r} of {self.where} names no provider of the "
            f"container {parent.__module__}.{parent.__qualname__} "
            f'(settings.LIFESPAN_CONTAINER["CONTAINER"]). {suggest(container, marker.target)}'
        )


def suggest(container: containers.Container, target: providers.Provider[Any] | str) -> str:
    """Name the container's providers closest to what ``target`` seems to mean."""
    parent = getattr(container, "declarative_parent", None) or type(container)
    names = sorted(set(_paths(container).values()))
    if not names:
        return f"{parent.__qualname__} declares no providers: declare one, then name it here."
    wanted = target if isinstance(target, str) else _label(target)
    ranked = difflib.get_close_matches(wanted, names, n=3, cutoff=0.0)
    shown = ", ".join(f"Provide[{parent.__qualname__}.{path}]" for path in ranked)
    return (
        f"Name one of its providers, e.g. {shown}, or its dotted name, e.g. Provide[{ranked[0]!r}]."
    )


_REGISTRY: list[InjectedFunction] = []
"""Every function decorated with ``@inject``, for the system checks."""


def injected_functions() -> tuple[InjectedFunction, ...]:
    """Every function decorated with ``@inject`` so far."""
    return tuple(_REGISTRY)


def forget_resolutions() -> None:
    """Make every injected function resolve its markers again on its next call.

    Called when the process's runtime is swapped (``_runtime.set_runtime``).
    """
    for spec in _REGISTRY:
        spec.forget()


def inject(func: Callable[P, R]) -> Callable[P, R]:
    """Pass the values of the ``Provide[...]`` markers in ``func``'s signature.

    Works on sync and async function views and on the methods of class-based and
    Django REST framework views (decorate the method itself, under ``@api_view``
    or ``@action`` where those are used).
    """
    if isinstance(func, type):
        msg = (
            f"@inject decorates functions and methods, not the class {func.__qualname__}: "
            "decorate the view's methods (get, post, a ViewSet's actions...)."
        )
        raise InjectionError(msg)
    spec = InjectedFunction(func)
    if not spec.markers:
        msg = (
            f"@inject found no Provide[...] markers in the signature of {spec.where}. Put "
            "@inject directly on the function that declares them: under @api_view, "
            "@action or method_decorator, not above."
        )
        raise InjectionError(msg)
    _REGISTRY.append(spec)
    wrapper: Callable[..., Any] = func
    # One thin layer per marked parameter, innermost last: each resolves its marker
    # once and keeps the result in closure cells, so a call costs a few lookups.
    for index in reversed(range(len(spec.markers))):
        wrapper = _layer(wrapper, spec, index)
    wrapper.__lifespan_injected__ = spec  # type: ignore[attr-defined]
    return cast("Callable[P, R]", wrapper)


# A layer is the hot path. Between startup and shutdown, for a resource that no
# test overrides, a call costs: is the argument given, is the provider overridden,
# the value from the lifecycle's dict, and (for loop-bound resources) is this the
# resources' loop. Anything unusual goes to lifecycle.hand_out(), which applies
# every check and raises the right error.


def _layer(inner: Callable[..., Any], spec: InjectedFunction, index: int) -> Callable[..., Any]:  # noqa: C901 (the hot path, inlined on purpose)
    """Wrap ``inner`` to pass the ``index``-th marked parameter of ``spec``."""
    name, position, _ = spec.markers[index]
    provider: Any = None  # set to the loader below
    guard: object = _NOT_A_RESOURCE
    values: dict[str, object] = {}
    resource = ""
    loop_bound = False
    lifecycle: Any = None

    def load() -> object:
        """Resolve the marker (first call, or after a swap); return the provider's value."""
        nonlocal provider, guard, values, resource, loop_bound, lifecycle
        resolved, resolved_guard, values, resource, loop_bound, lifecycle = spec.resolve()[index]
        provider, guard = resolved, resolved_guard
        return provider()

    # Until resolved, `provider` is a loader whose override check fails, so the call
    # takes the provider path, and calling it resolves: no extra test on the hot path.
    loader = _Loader(load)
    provider = loader

    def forget() -> None:
        nonlocal provider, guard
        provider, guard = loader, _NOT_A_RESOURCE

    spec.on_forget(forget)

    # The two bodies differ only in what they do with an awaitable from a provider.
    @functools.wraps(inner)
    async def async_view(*args: Any, **kwargs: Any) -> Any:
        if name not in kwargs and len(args) <= position:  # the caller's argument wins
            if provider.last_overriding is guard:
                try:
                    value = values[resource]
                except KeyError:
                    value = lifecycle.hand_out(resource)  # raises: not open
                if loop_bound and here() is not lifecycle.loop:
                    value = lifecycle.hand_out(resource)
            else:
                value = provider()
                if is_async_result(value):
                    value = await value
            kwargs[name] = value
        return await inner(*args, **kwargs)

    @functools.wraps(inner)
    def sync_view(*args: Any, **kwargs: Any) -> Any:
        if name not in kwargs and len(args) <= position:  # the caller's argument wins
            if provider.last_overriding is guard:
                try:
                    value = values[resource]
                except KeyError:
                    value = lifecycle.hand_out(resource)  # raises: not open
                if loop_bound and here() is not lifecycle.loop:
                    value = lifecycle.hand_out(resource)
            else:
                value = provider()
                if is_async_result(value):
                    _discard(value)
                    raise InjectionError(_awaitable_in_sync_view(spec, name))
            kwargs[name] = value
        return inner(*args, **kwargs)

    return async_view if iscoroutinefunction(inner) else sync_view


class _Loader:
    """Stands in for a layer's provider until its marker is resolved."""

    last_overriding = None  # never a guard: the layer calls the loader

    def __init__(self, load: Callable[[], object]) -> None:
        self._load = load

    def __call__(self) -> object:
        return self._load()


def _awaitable_in_sync_view(spec: InjectedFunction, name: str) -> str:
    return (
        f"The provider for parameter {name!r} of the sync view {spec.where} returned an "
        "awaitable, which a sync view cannot await (a coroutine or a future: it is an "
        "async provider). Make the view async, or declare the value as a "
        "providers.Resource so that it is opened at startup."
    )


def _discard(pending: object) -> None:
    """Drop a coroutine or future that a provider made for this call (never a resource)."""
    if asyncio.iscoroutine(pending):
        pending.close()
    elif asyncio.isfuture(pending):
        pending.cancel()


# -- finding markers ---------------------------------------------------------------------

# dependency-injector declares its markers as protocol instances for type checkers.
_DI_PROVIDE = cast("type[Any]", wiring.Provide)
_DI_OTHER_MARKERS = (cast("type[Any]", wiring.Provider), cast("type[Any]", wiring.Closing))


def marker_of(value: object) -> Marker | None:
    """``value`` as a marker: ours, or dependency-injector's ``Provide[...]``."""
    if isinstance(value, Marker):
        return value
    if isinstance(value, _DI_PROVIDE):
        if getattr(value, "modifier", None) is not None:
            msg = f"Provide[...] with a modifier ({value.modifier!r}) is not supported."
            raise InjectionError(msg)
        return Marker(value.provider)
    if isinstance(value, _DI_OTHER_MARKERS):
        msg = (
            f"{type(value).__name__}[...] markers of dependency_injector.wiring are not "
            "supported by lifespan_container.inject; use lifespan_container.Provide[...]."
        )
        raise InjectionError(msg)
    return None


def _find_markers(func: Callable[..., Any], where: str) -> Iterator[tuple[str, int, Marker]]:
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
        return bool(tuple(_find_markers(func, repr(func))))
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
    paths = _paths(container)
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
    found = _option_path(target, _paths(container))
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


def _paths(container: containers.Container) -> dict[providers.Provider[Any], str]:
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
