"""What ``@inject`` knows about each decorated function, and the registry of them.

An :class:`InjectedFunction` reads the function's markers when it is decorated
and resolves them against the process's runtime on the first call (again after
the runtime is swapped). :data:`REGISTRY` holds the live ones, weakly, for the
system checks.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from dependency_injector import providers

from lifespan_container import _runtime
from lifespan_container._markers import Marker, find_markers, find_provider, paths_of, suggest
from lifespan_container._request_scope import Need, needs_of
from lifespan_container.engine.guard import Handle
from lifespan_container.exceptions import InjectionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from dependency_injector import containers

__all__ = ["REGISTRY", "InjectedFunction", "InjectedFunctions", "Resolved", "injected_functions"]


class Resolved(NamedTuple):
    """One marker resolved against a runtime.

    Its provider; for a resource of the lifecycle, the handle that hands its open
    value out without calling the provider; the request-scoped providers it needs
    opened first (empty for most).
    """

    provider: providers.Provider[Any]
    handle: Handle | None
    needs: tuple[Need, ...] = ()


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
        paths = paths_of(container)
        for name, _, marker in self.markers:
            provider = find_provider(container, marker.target)
            if provider is None:
                raise InjectionError(self.unresolved(name, marker, container))
            handle = lifecycle.fast_path(provider) if lifecycle else None
            needs = needs_of(provider, paths) if handle is None else ()
            resolved.append(Resolved(provider, handle, needs))
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
