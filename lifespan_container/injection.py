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
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar, cast, overload

from asgiref.sync import iscoroutinefunction
from dependency_injector import providers

from lifespan_container._injected import REGISTRY, InjectedFunction
from lifespan_container._markers import Marker
from lifespan_container._request_scope import (
    Need,
    call_sync,
    cleanup_limit,
    close_failed,
    close_with,
    fallback_scope,
    needs_now,
    open_async,
    open_sync,
)
from lifespan_container.engine.graph import is_async_result
from lifespan_container.engine.guard import CHECK_BY_THREAD, here, this_thread
from lifespan_container.engine.request_scope import current
from lifespan_container.exceptions import InjectionError

if TYPE_CHECKING:
    from collections.abc import Callable


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
# the value from the guard's cell for it (Guard.cell: a list that holds the value
# exactly while it is open), and (for loop-bound resources) is this the resources'
# loop. Anything unusual goes to guard.hand_out(), which applies every check and
# raises the right error.

_NEEDS_SCOPE: Final = object()
"""What a layer's loader returns when the marker needs request-scoped providers opened."""

_NOT_A_RESOURCE: Final = object()
"""What a layer compares ``last_overriding`` with for a provider that is not a
lifecycle resource (or not resolved yet): never a provider's overriding."""


def _layer(inner: Callable[..., Any], spec: InjectedFunction, index: int) -> Callable[..., Any]:  # noqa: C901, PLR0915 (the hot path, inlined on purpose)
    """Wrap ``inner`` to pass the ``index``-th marked parameter of ``spec``."""
    name, position, _ = spec.markers[index]
    provider: Any = None  # set to the loader below
    overriding: object = _NOT_A_RESOURCE
    cell: list[object] = []
    resource = ""
    loop_bound = False
    by_loop = by_thread = False  # how the loop check runs: see engine.guard.this_thread
    guard: Any = None
    needs: tuple[Need, ...] = ()

    def load() -> object:
        """Resolve the marker (first call, or after a swap); return the provider's value.

        Or :data:`_NEEDS_SCOPE` when request-scoped providers must be opened first.
        """
        nonlocal provider, overriding, cell, resource, loop_bound, guard, needs
        nonlocal by_loop, by_thread
        resolved = spec.resolve()[index]
        needs = resolved.needs
        handle = resolved.handle
        if handle is not None:
            resource, loop_bound, guard = handle.name, handle.loop_bound, handle.guard
            overriding = handle.overriding
            cell = guard.cell(resource)
        else:  # not a resource (any more): hold nothing of a previous runtime
            resource, cell, loop_bound, guard = "", [], False, None
            overriding = _NOT_A_RESOURCE
        provider = resolved.provider
        by_thread = loop_bound and CHECK_BY_THREAD
        by_loop = loop_bound and not CHECK_BY_THREAD
        return _NEEDS_SCOPE if needs else provider()

    # Until resolved, `provider` is a loader whose override check fails, so the call
    # takes the provider path, and calling it resolves: no extra test on the hot path.
    loader = _Loader(load)
    provider = loader

    def forget() -> None:
        nonlocal provider, overriding, needs
        provider, overriding, needs = loader, _NOT_A_RESOURCE, ()

    spec.on_forget(forget)

    # What a view does when the provider is not a resource that no test overrides
    # (or not resolved yet): call it. Kept out of the views so that their frames,
    # made on every call, stay small. The two differ only in what they do with an
    # awaitable from a provider, and in how they open request-scoped providers.
    async def provided_async(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        value = _NEEDS_SCOPE if needs else provider()
        if value is _NEEDS_SCOPE:
            scope = current.get()
            if scope is None:  # not served by our handler: a scope of its own
                planned = needs_now(provider, needs)
                return await _own_scope_async(async_view, spec, planned, args, kwargs)
            opening = open_async(scope, needs_now(provider, needs))
            if opening is not None:
                await opening
            value = scope.values.get(provider, _NEEDS_SCOPE)  # a request resource's
            if value is _NEEDS_SCOPE:  # overridden, or a provider using one
                value = provider()
                if is_async_result(value):
                    value = await value
        elif is_async_result(value):
            value = await value
        kwargs[name] = value
        return await inner(*args, **kwargs)

    def provided_sync(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        value = _NEEDS_SCOPE if needs else provider()
        if value is _NEEDS_SCOPE:
            scope = current.get()
            if scope is None:  # not served by our handler: a scope of its own
                planned = needs_now(provider, needs)
                return _own_scope_sync(sync_view, spec, planned, args, kwargs)
            open_sync(scope, needs_now(provider, needs))
            value = scope.values.get(provider, _NEEDS_SCOPE)  # a request resource's
            if value is _NEEDS_SCOPE:  # overridden, or a provider using one
                value = provider()
                _refuse_awaitable(value, spec, name)
        elif is_async_result(value):
            _discard(value)
            raise InjectionError(_awaitable_in_sync_view(spec, name))
        kwargs[name] = value
        return inner(*args, **kwargs)

    @functools.wraps(inner)
    async def async_view(*args: Any, **kwargs: Any) -> Any:
        if name not in kwargs and len(args) <= position:  # the caller's argument wins
            if provider.last_overriding is not overriding:
                return await provided_async(args, kwargs)
            try:
                kwargs[name] = cell[0]
            except IndexError:
                kwargs[name] = guard.hand_out(resource)  # raises: not open
            if (by_loop and here() is not guard.loop) or (
                by_thread and this_thread() != getattr(guard.loop, "_thread_id", None)
            ):
                kwargs[name] = guard.hand_out(resource)
        return await inner(*args, **kwargs)

    @functools.wraps(inner)
    def sync_view(*args: Any, **kwargs: Any) -> Any:
        if name not in kwargs and len(args) <= position:  # the caller's argument wins
            if provider.last_overriding is not overriding:
                return provided_sync(args, kwargs)
            try:
                kwargs[name] = cell[0]
            except IndexError:
                kwargs[name] = guard.hand_out(resource)  # raises: not open
            if (by_loop and here() is not guard.loop) or (
                by_thread and this_thread() != getattr(guard.loop, "_thread_id", None)
            ):
                kwargs[name] = guard.hand_out(resource)
        return inner(*args, **kwargs)

    return async_view if iscoroutinefunction(inner) else sync_view


async def _own_scope_async(
    view: Callable[..., Any],
    spec: InjectedFunction,
    needs: tuple[Need, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Call ``view`` in a scope of its own, closed with its response (or its failure).

    What leaves ``view`` is the request's failure: no handler of ours tells the
    view's exceptions apart here.
    """
    with fallback_scope(args, spec.where, needs) as own:
        try:
            response = await view(*args, **kwargs)
        except BaseException as error:
            own.fail(error)
            if not own.closed:  # on this loop, now: no response will close it
                await own.aclose(error, cleanup_limit(), call_sync)
            raise
    close_with(response, own)
    return response


def _own_scope_sync(
    view: Callable[..., Any],
    spec: InjectedFunction,
    needs: tuple[Need, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """:func:`_own_scope_async` for a sync view."""
    with fallback_scope(args, spec.where, needs) as own:
        try:
            response = view(*args, **kwargs)
        except BaseException as error:
            close_failed(own, error)
            raise
    close_with(response, own)
    return response


class _Loader:
    """Stands in for a layer's provider until its marker is resolved."""

    last_overriding = None  # never a guard: the layer calls the loader

    def __init__(self, load: Callable[[], object]) -> None:
        self._load = load

    def __call__(self) -> object:
        return self._load()


def _refuse_awaitable(value: object, spec: InjectedFunction, name: str) -> None:
    """A sync view cannot await what an async provider returned: drop it, and say so."""
    if is_async_result(value):
        _discard(value)
        raise InjectionError(_awaitable_in_sync_view(spec, name))


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
