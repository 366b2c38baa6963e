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
import functools
import itertools
import weakref
from typing import TYPE_CHECKING, Any, Final, NamedTuple, ParamSpec, TypeVar, cast, overload

from asgiref.sync import iscoroutinefunction
from dependency_injector import providers

from lifespan_container import _runtime
from lifespan_container._markers import Marker, find_markers, find_provider, suggest
from lifespan_container.engine.graph import is_async_result
from lifespan_container.engine.guard import Handle, here
from lifespan_container.exceptions import InjectionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from dependency_injector import containers

__all__ = ["Provide", "inject"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


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


class _Resolved(NamedTuple):
    """One marker resolved against a runtime.

    Its provider, and for a resource of the lifecycle, the handle that hands its
    open value out without calling the provider.
    """

    provider: providers.Provider[Any]
    handle: Handle | None


_ORDER: Final = itertools.count()


class InjectedFunction:
    """What ``@inject`` knows about one function: its markers, and their resolution.

    The markers are read when the function is decorated, so a misplaced marker is
    an error at import time; they are resolved against the process's runtime on
    the first call, and again after the runtime is swapped (see :meth:`forget`).
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.order = next(_ORDER)
        self.module = getattr(func, "__module__", "?")
        self.qualname = getattr(func, "__qualname__", repr(func))
        self.markers: tuple[tuple[str, int, Marker], ...] = tuple(find_markers(func, self.where))
        """``(parameter, position, marker)`` for every marked parameter."""
        self._resolved: tuple[_Resolved, ...] | None = None
        self._forgets: list[Callable[[], None]] = []

    @property
    def where(self) -> str:
        return f"{self.module}.{self.qualname}"

    def resolve(self) -> tuple[_Resolved, ...]:
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
        resolved: list[_Resolved] = []
        lifecycle = runtime.lifecycle
        for name, _, marker in self.markers:
            provider = find_provider(container, marker.target)
            if provider is None:
                raise InjectionError(self.unresolved(name, marker, container))
            resolved.append(
                _Resolved(provider, lifecycle.fast_path(provider) if lifecycle else None)
            )
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


class InjectedFunctions:
    """The functions decorated with ``@inject`` that are still alive, for the checks.

    Held weakly: a decorated function that is dropped (a test's local view) leaves
    the registry with it.
    """

    def __init__(self) -> None:
        self._specs: weakref.WeakSet[InjectedFunction] = weakref.WeakSet()

    def add(self, spec: InjectedFunction) -> None:
        """Register the function ``spec`` describes."""
        self._specs.add(spec)

    def __iter__(self) -> Iterator[InjectedFunction]:
        """The live functions, in the order they were decorated."""
        return iter(sorted(self._specs, key=lambda spec: spec.order))

    def clear(self) -> None:
        """Forget every function (they still work; the checks no longer see them)."""
        self._specs.clear()

    def replace(self, specs: Iterable[InjectedFunction]) -> None:
        """Keep exactly ``specs`` (a test puts back what it found)."""
        kept = list(specs)
        self._specs.clear()
        self._specs.update(kept)

    def forget_resolutions(self) -> None:
        """Make every function resolve its markers again on its next call."""
        for spec in list(self._specs):
            spec.forget()


REGISTRY: Final = InjectedFunctions()
"""Every live function decorated with ``@inject``."""

# Injected views resolved their markers against the previous container.
_runtime.on_swap(REGISTRY.forget_resolutions)


def injected_functions() -> tuple[InjectedFunction, ...]:
    """Every live function decorated with ``@inject``, in the order they were decorated."""
    return tuple(REGISTRY)


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
    REGISTRY.add(spec)
    wrapper: Callable[..., Any] = func
    # One thin layer per marked parameter, innermost last: each resolves its marker
    # once and keeps the result in closure cells, so a call costs a few lookups.
    for index in reversed(range(len(spec.markers))):
        wrapper = _layer(wrapper, spec, index)
    wrapper.__lifespan_injected__ = spec  # type: ignore[attr-defined]
    return cast("Callable[P, R]", wrapper)


# A layer is the hot path. Between startup and shutdown, for a resource that no
# test overrides, a call costs: is the argument given, is the provider overridden,
# the value from the guard's dict, and (for loop-bound resources) is this the
# resources' loop. Anything unusual goes to guard.hand_out(), which applies every
# check and raises the right error.

_NOT_A_RESOURCE: Final = object()
"""What a layer compares ``last_overriding`` with for a provider that is not a
lifecycle resource (or not resolved yet): never a provider's overriding."""


def _layer(inner: Callable[..., Any], spec: InjectedFunction, index: int) -> Callable[..., Any]:  # noqa: C901, PLR0915 (the hot path, inlined on purpose)
    """Wrap ``inner`` to pass the ``index``-th marked parameter of ``spec``."""
    name, position, _ = spec.markers[index]
    provider: Any = None  # set to the loader below
    overriding: object = _NOT_A_RESOURCE
    values: dict[str, object] = {}
    resource = ""
    loop_bound = False
    guard: Any = None

    def load() -> object:
        """Resolve the marker (first call, or after a swap); return the provider's value."""
        nonlocal provider, overriding, values, resource, loop_bound, guard
        resolved = spec.resolve()[index]
        handle = resolved.handle
        if handle is not None:
            resource, values, loop_bound, guard = (
                handle.name,
                handle.values,
                handle.loop_bound,
                handle.guard,
            )
            overriding = handle.overriding
        provider = resolved.provider
        return provider()

    # Until resolved, `provider` is a loader whose override check fails, so the call
    # takes the provider path, and calling it resolves: no extra test on the hot path.
    loader = _Loader(load)
    provider = loader

    def forget() -> None:
        nonlocal provider, overriding
        provider, overriding = loader, _NOT_A_RESOURCE

    spec.on_forget(forget)

    # The two bodies differ only in what they do with an awaitable from a provider.
    @functools.wraps(inner)
    async def async_view(*args: Any, **kwargs: Any) -> Any:
        if name not in kwargs and len(args) <= position:  # the caller's argument wins
            if provider.last_overriding is overriding:
                try:
                    value = values[resource]
                except KeyError:
                    value = guard.hand_out(resource)  # raises: not open
                if loop_bound and here() is not guard.loop:
                    value = guard.hand_out(resource)
            else:
                value = provider()
                if is_async_result(value):
                    value = await value
            kwargs[name] = value
        return await inner(*args, **kwargs)

    @functools.wraps(inner)
    def sync_view(*args: Any, **kwargs: Any) -> Any:
        if name not in kwargs and len(args) <= position:  # the caller's argument wins
            if provider.last_overriding is overriding:
                try:
                    value = values[resource]
                except KeyError:
                    value = guard.hand_out(resource)  # raises: not open
                if loop_bound and here() is not guard.loop:
                    value = guard.hand_out(resource)
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
