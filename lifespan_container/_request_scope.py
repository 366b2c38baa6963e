"""How ``@inject`` and the handler open and close request-scoped resources (internal).

The provider classes users declare are in :mod:`lifespan_container.per_request`;
the scope itself (open, close, bounded) is the engine's
:class:`~lifespan_container.engine.request_scope.RequestScope`. Here:

- which request-scoped providers a marker needs, in dependency order
  (:func:`needs_of`), and opening them on the async or the sync path;
- the failure Django reports with ``got_request_exception`` (:func:`note_exception`);
- the scope of a request our handler does not serve (Django's test clients, a
  WSGI server, a view called directly), closed with the response
  (:func:`fallback_scope`);
- the system checks' finding: app-scoped providers that depend on a request
  (:func:`app_scoped_problems`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import threading
from types import AsyncGeneratorType
from typing import TYPE_CHECKING, Any, Final, cast

from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync, sync_to_async
from dependency_injector import providers
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest

from lifespan_container._runtime import get_runtime
from lifespan_container.engine.drive import drop
from lifespan_container.engine.graph import edges
from lifespan_container.engine.guard import here
from lifespan_container.engine.request_scope import RequestScope, current, drive_kind
from lifespan_container.exceptions import RequestScopeError
from lifespan_container.per_request import (
    CurrentRequest,
    RequestResource,
    call_sync,
    cleanup_limit,
    name_of,
    outside,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator


__all__ = [
    "ATTRIBUTE",
    "Need",
    "app_scoped_problems",
    "bind",
    "call_sync",
    "cleanup_limit",
    "close_failed",
    "close_with",
    "fallback_scope",
    "needs_of",
    "note_exception",
    "open_async",
    "open_sync",
]

ATTRIBUTE: Final = "_lifespan_request_scope"
"""Where a request keeps its scope (``request.__dict__``)."""


class Need:
    """A request-scoped provider a marker needs, and the ones it needs first."""

    __slots__ = ("deps", "make", "name", "opens", "provider")

    def __init__(
        self, provider: providers.Provider[Any], name: str, deps: tuple[Need, ...]
    ) -> None:
        self.provider = provider
        self.name = name
        self.deps = deps
        self.opens = isinstance(provider, RequestResource)
        """``False`` for ``CurrentRequest()``: it needs a scope, and opens nothing."""
        self.make: Callable[[], object] = (
            provider.maker() if isinstance(provider, RequestResource) else _nothing
        )
        """The initializer's result for this request (a generator, a context manager...)."""


def _nothing() -> object:
    return None


def needs_now(provider: providers.Provider[Any], needs: tuple[Need, ...]) -> tuple[Need, ...]:
    """``needs``, unless a test overrides the marker's provider: then the override's."""
    overriding = provider.last_overriding
    if overriding is None:
        return needs
    return needs_of(overriding, {})


def needs_of(
    provider: providers.Provider[Any], paths: dict[providers.Provider[Any], str]
) -> tuple[Need, ...]:
    """The request-scoped providers ``provider`` reaches first (itself, if it is one).

    A provider that reaches no ``RequestResource`` but ``CurrentRequest()`` needs a
    scope all the same (one that opens nothing).
    """
    made: dict[providers.Provider[Any], Need] = {}
    request_seen: list[providers.Provider[Any]] = []

    def need(resource: RequestResource[Any], on_path: frozenset[int]) -> Need:
        found = made.get(resource)
        if found is None:
            name = paths.get(resource) or name_of(resource)
            resource._lifespan_name = name  # type: ignore[attr-defined]  # noqa: SLF001
            inner = on_path | {id(resource)}
            found = Need(resource, name, tuple(roots(edges_of(resource), inner)))
            made[resource] = found
        return found

    def roots(start: Iterable[providers.Provider[Any]], on_path: frozenset[int]) -> list[Need]:
        found: list[Need] = []
        seen: set[int] = set()
        stack = list(start)
        while stack:
            node = stack.pop()
            if id(node) in seen or id(node) in on_path:
                continue
            seen.add(id(node))
            if isinstance(node, RequestResource):
                found.append(need(node, on_path))
            elif isinstance(node, CurrentRequest):
                request_seen.append(node)
            else:
                stack.extend(edges_of(node))
        return found

    found = tuple(roots([provider], frozenset()))
    if not found and request_seen:
        return (Need(request_seen[0], "CurrentRequest()", ()),)
    return found


def edges_of(provider: providers.Provider[Any]) -> list[providers.Provider[Any]]:
    """What ``provider`` depends on, not counting what overrides it."""
    overriding = set(map(id, provider.overridden))
    return [child for _, child in edges(provider) if id(child) not in overriding]


APP_SCOPED: Final = (providers.Resource, providers.ContextLocalResource, providers.BaseSingleton)
"""Providers whose value outlives a request: they must not depend on one."""


def app_scoped_problems(paths: dict[providers.Provider[Any], str]) -> list[tuple[str, str, str]]:
    """``(code, path, message)`` for each app-scoped provider that reaches a request.

    ``E015``: it depends on a ``RequestResource``; ``E016``: on ``CurrentRequest()``.
    The message names the way from the provider to what it must not use.
    """
    found: list[tuple[str, str, str]] = []
    for provider, path in paths.items():
        if not isinstance(provider, APP_SCOPED):
            continue
        way = _way_to_request(provider)
        if way is None:
            continue
        *through, target = way
        code = "E016" if isinstance(target, CurrentRequest) else "E015"
        what = (
            "CurrentRequest()"
            if code == "E016"
            else f"the request-scoped {paths.get(target) or name_of(target)!r}"
        )
        via = " -> ".join([path, *(paths.get(p) or type(p).__name__ for p in through[1:])])
        found.append(
            (
                code,
                path,
                (
                    f"{type(provider).__name__} {path!r} lives as long as the process and "
                    f"depends on {what} (through {via}): it would keep the first request's "
                    "value for every later one."
                ),
            )
        )
    return found


def _way_to_request(start: providers.Provider[Any]) -> list[providers.Provider[Any]] | None:
    """The providers from ``start`` to a request-scoped one it depends on, if any."""
    stack: list[tuple[providers.Provider[Any], list[providers.Provider[Any]]]] = [(start, [start])]
    seen: set[int] = {id(start)}
    while stack:
        node, way = stack.pop()
        for child in edges_of(node):
            if isinstance(child, RequestResource | CurrentRequest):
                return [*way, child]
            if id(child) not in seen:
                seen.add(id(child))
                stack.append((child, [*way, child]))
    return None


def open_async(scope: RequestScope, needs: tuple[Need, ...]) -> Awaitable[object] | None:
    """What opens what ``needs`` lists and is not open yet (async path), or ``None``.

    One async generator with no request-scoped dependency, nearly every case, is
    opened by the awaitable returned, with no frame of this module around it.
    """
    if len(needs) == 1:
        need = needs[0]
        resource = need.provider
        if not need.opens or resource in scope.values or resource.last_overriding is not None:
            return None
        if not need.deps:
            initial = need.make()
            if type(initial) is AsyncGeneratorType:
                return scope.open_generator(resource, need.name, initial)
            return _open_one_async(scope, need, initial)
    return _open_all_async(scope, needs)


async def _open_all_async(scope: RequestScope, needs: tuple[Need, ...]) -> None:
    for need in needs:
        resource = need.provider
        if not need.opens or resource in scope.values or resource.last_overriding is not None:
            continue
        if need.deps:
            opening = open_async(scope, need.deps)
            if opening is not None:
                await opening
        await _open_one_async(scope, need, need.make())


async def _open_one_async(scope: RequestScope, need: Need, initial: object) -> None:
    if type(initial) is AsyncGeneratorType or drive_kind(initial) == "async":
        await scope.open(need.provider, need.name, initial)
    else:  # a sync resource in an async view: opened in the request's thread
        await sync_to_async(scope.open_sync)(need.provider, need.name, initial)


def open_sync(scope: RequestScope, needs: tuple[Need, ...]) -> None:
    """Open what ``needs`` lists and is not open yet, dependencies first (sync path)."""
    for need in needs:
        resource = need.provider
        if not need.opens or resource in scope.values or resource.last_overriding is not None:
            continue
        if need.deps:
            open_sync(scope, need.deps)
        initial = need.make()
        if drive_kind(initial) == "sync":
            scope.open_sync(resource, need.name, initial)
            continue
        drop(initial)
        if here() is not None or _serving_loop() is None:
            msg = (
                f"The request-scoped resource {need.name!r} is async, and this sync view runs "
                "where no event loop serves the request (Django's sync test Client, a WSGI "
                "server): make the view async, serve it over ASGI, run the test inside "
                "lifespan_container.testing.lifespan() (with, or @with_lifespan), or make "
                "the resource sync."
            )
            raise RequestScopeError(msg)
        # Handed over to the sync view; opened (and later closed) on the serving loop.
        async_to_sync(_open_one)(scope, cast("RequestResource[Any]", resource), need.name)


async def _open_one(scope: RequestScope, resource: RequestResource[Any], name: str) -> None:
    await scope.open(resource, name, resource.initial())


def _serving_loop() -> asyncio.AbstractEventLoop | None:
    """The loop that serves the request this sync thread works for, if any."""
    loop: asyncio.AbstractEventLoop | None = getattr(
        SyncToAsync.threadlocal, "main_event_loop", None
    )
    return loop


def note_exception(sender: object, request: object = None, **kwargs: object) -> None:  # noqa: ARG001
    """``got_request_exception`` receiver: the failure reaches the request's resources."""
    scope = getattr(request, "__dict__", {}).get(ATTRIBUTE)
    error = sys.exc_info()[1]
    if scope is not None and error is not None:
        scope.fail(error)


def request_of(args: tuple[Any, ...]) -> HttpRequest | None:
    """The request a view was called with (``request`` or ``self, request``)."""
    for argument in args[:2]:
        if isinstance(argument, HttpRequest):
            return argument
        inner = getattr(argument, "_request", None)  # Django REST framework's Request
        if isinstance(inner, HttpRequest):
            return inner
    return None


def bind(scope: RequestScope, request: HttpRequest) -> None:
    """Make ``scope`` the request's (``CurrentRequest`` and the receivers find it)."""
    scope.request = request
    request.__dict__[ATTRIBUTE] = scope


@contextlib.contextmanager
def fallback_scope(
    args: tuple[Any, ...], where: str, needs: tuple[Need, ...]
) -> Iterator[RequestScope]:
    """Make current the scope of a request served without our handler, while inside.

    The scope is made on first use and closed when Django closes the response:
    ``BaseHandler`` adds ``request.close`` to the final response's closers, which
    every test client and WSGI server call once the body was consumed. A view
    called directly (a ``RequestFactory`` request) gets it added by
    :func:`close_with`.
    """
    scope = _scope_of(args, where, needs)
    token = current.set(scope)
    try:
        yield scope
    finally:
        current.reset(token)


def close_with(response: object, scope: RequestScope) -> None:
    """Close ``scope`` when ``response`` is closed, too (closing twice closes once)."""
    closers = getattr(response, "_resource_closers", None)
    if isinstance(closers, list) and scope.request is not None:
        closers.append(functools.partial(close_fallback, scope))


def _scope_of(args: tuple[Any, ...], where: str, needs: tuple[Need, ...]) -> RequestScope:
    request = request_of(args)
    if request is None:
        if all(need.provider.last_overriding is not None or not need.opens for need in needs):
            return RequestScope(label=where)  # every value is a test's: nothing to open
        msg = f"{where} uses a request-scoped provider and was not called with a request. "
        raise RequestScopeError(msg + outside("It"))
    existing = request.__dict__.get(ATTRIBUTE)
    if isinstance(existing, RequestScope) and not existing.closed:
        return existing
    scope = RequestScope(label=request.path)
    # A sync handler's request (the sync Client, a WSGI server) in a loop that
    # async_to_sync made for the view alone; an AsyncClient request in a loop made
    # for a whole async TestCase method ends in it.
    if here() in AsyncToSync.loop_thread_executors and isinstance(request, WSGIRequest):
        scope.async_refused = (
            "this async view runs on an event loop made for this one call (Django's sync "
            "test Client, a WSGI server), which ends before the response is closed. Run "
            "the test inside lifespan_container.testing.lifespan() (with, or "
            "@with_lifespan), where the sync Client serves async views on the lifespan's "
            "loop; serve it with AsyncClient, lifespan_client() or an ASGI server; or "
            "make the resource sync."
        )
    bind(scope, request)
    get_runtime().open_scopes.add(scope)  # until the response closes it
    original: Callable[[], None] = request.close

    def close() -> None:
        try:
            original()
        finally:
            close_fallback(scope)

    request.close = close  # type: ignore[method-assign]
    return scope


def close_fallback(scope: RequestScope) -> None:
    """Close a scope made by :func:`fallback_scope`, wherever the response is closed.

    Async values close on the loop that serves the request, sync ones in the thread
    its sync view ran in (asgiref's thread for the request), as under our handler.
    """
    get_runtime().open_scopes.discard(scope)
    if scope.closed or not scope.opened:
        scope.closed = True
        return
    limit = cleanup_limit()
    if here() is not None:  # on the loop's own thread: AsyncClient, an async stream
        rest = scope.close_now(scope.error, limit, call_sync)
        if rest is not None:
            task = asyncio.ensure_future(rest)
            closes = get_runtime().request_closes
            closes.add(task)
            task.add_done_callback(closes.discard)
        return
    scope.closed = True  # now: a second closer of the same request closes nothing
    if scope.sync_thread in (None, threading.get_ident()):  # the view's own thread
        if scope.all_sync:
            scope.close_sync(scope.error)
        else:  # async_to_sync keeps this thread for the sync closes
            async_to_sync(scope.aclose)(scope.error, limit, call_sync)
        return
    serving = _serving_loop()
    if serving is not None and serving.is_running():  # reaches the view's thread
        closing = scope.aclose(scope.error, limit, call_sync)
        future = asyncio.run_coroutine_threadsafe(closing, serving)
        future.result(timeout=limit.seconds * max(len(scope.opened), 1) + limit.seconds)
    elif scope.all_sync:
        scope.close_sync(scope.error)
    else:
        async_to_sync(scope.aclose)(scope.error, limit, call_sync)


def close_failed(scope: RequestScope, error: BaseException) -> None:
    """A view called without a handler raised: no response will close its scope."""
    scope.fail(error)
    close_fallback(scope)
