"""Resources that live for one request: ``RequestResource`` and ``CurrentRequest``.

.. code-block:: python

    async def checkout(pool, request):
        async with pool.connection() as conn:
            async with conn.transaction():
                yield conn


    class Container(containers.DeclarativeContainer):
        pool = providers.Resource(make_pool)  # lives as long as the process
        request = CurrentRequest()  # the HttpRequest being served
        conn = RequestResource(checkout, pool=pool, request=request)

A ``RequestResource`` is opened the first time a request needs it (a view's
``Provide[...]`` marker, or a provider such a marker depends on), once per
request, and closed after the response was really sent: after the last chunk of
a streaming response, or when the client disconnects. The exception the request
failed with, if any, is thrown into the generator (so ``async with
conn.transaction()`` rolls back); a disconnect arrives as Django's
``RequestAborted``. The closing is bounded by ``REQUEST_CLEANUP_TIMEOUT``.

Under :class:`~lifespan_container.handler.LifespanHandler` every request has a
scope. Elsewhere (Django's test clients, a WSGI server, a view called with a
``RequestFactory`` request) ``@inject`` opens one bound to the request and
closes it when Django closes the response. Outside any request, open a scope of
your own with :func:`request_scope`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from dependency_injector import providers
from django.http import HttpRequest

from lifespan_container.engine.graph import edges
from lifespan_container.engine.guard import here
from lifespan_container.engine.request_scope import RequestScope, current, drive_kind
from lifespan_container.exceptions import RequestScopeError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

    from lifespan_container.engine.limits import Limit

__all__ = ["CurrentRequest", "RequestResource", "request_scope"]

T = TypeVar("T")

ATTRIBUTE: Final = "_lifespan_request_scope"
"""Where a request keeps its scope (``request.__dict__``)."""


class CurrentRequest(providers.Provider[HttpRequest]):
    """Provides the ``HttpRequest`` being served (request-scoped).

    Only request-scoped providers (``RequestResource``, ``Factory`` ...) may use it;
    ``manage.py check`` reports a ``Resource`` or a ``Singleton`` that does.
    """

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HttpRequest:  # noqa: ARG002
        scope = current.get()
        request = scope.request if scope is not None else None
        if request is None:
            raise RequestScopeError(_outside("CurrentRequest()"))
        return request  # type: ignore[return-value]


class RequestResource(providers.Callable[T], Generic[T]):
    """A resource that lives for one request: takes what ``providers.Resource`` takes.

    An async or sync generator function (the code after ``yield`` is the
    cleanup), a context-manager class or factory, or a
    ``resources.Resource``/``AsyncResource`` subclass; with the arguments to pass
    it, which may be app-scoped providers, ``CurrentRequest()`` and other
    request-scoped providers.
    """

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        scope = current.get()
        name = name_of(self)
        if scope is None:
            raise RequestScopeError(_outside(name))
        values = scope.values
        if self in values:
            return values[self]  # type: ignore[return-value]
        initial = self.initial(args, kwargs)
        if drive_kind(initial) == "async":
            _discard(initial)
            msg = (
                f"The request-scoped resource {name!r} is async and not open yet in this "
                "request: ask for it with Provide[...] on an @inject function (which opens "
                "it on the event loop), or open it with await on an async path first."
            )
            raise RequestScopeError(msg)
        return scope.open_sync(self, name, initial)  # type: ignore[return-value]

    def initial(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> object:
        """Call the initializer with its injected arguments: the generator, the CM..."""
        provide: Any = providers.Callable._provide  # type: ignore[attr-defined]  # noqa: SLF001
        return provide(self, args, kwargs or {})


def _outside(name: str) -> str:
    return (
        f"{name} was used outside a request: request-scoped providers have a value only "
        "while a request is served (or inside lifespan_container.request_scope()). In a "
        "management command, run(), a startup receiver or a background task, open a scope "
        "of your own: `async with request_scope(): ...` or `with request_scope(): ...`."
    )


def _discard(initial: object) -> None:
    """Drop an initializer's result that is not opened (a coroutine must be closed)."""
    if inspect.iscoroutine(initial):
        initial.close()


def name_of(provider: providers.Provider[Any]) -> str:
    """The provider's path in its container (known once a marker resolved it)."""
    name = getattr(provider, "_lifespan_name", None)
    if isinstance(name, str):
        return name
    provides = getattr(provider, "provides", None)
    return str(getattr(provides, "__qualname__", None) or type(provider).__name__)


class Need:
    """A request-scoped provider a marker needs, and the ones it needs first."""

    __slots__ = ("deps", "name", "provider")

    def __init__(self, provider: RequestResource[Any], name: str, deps: tuple[Need, ...]) -> None:
        self.provider = provider
        self.name = name
        self.deps = deps


def needs_of(
    provider: providers.Provider[Any], paths: dict[providers.Provider[Any], str]
) -> tuple[Need, ...]:
    """The request-scoped providers ``provider`` reaches first (itself, if it is one)."""
    made: dict[providers.Provider[Any], Need] = {}

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
            else:
                stack.extend(edges_of(node))
        return found

    return tuple(roots([provider], frozenset()))


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


async def open_async(scope: RequestScope, needs: tuple[Need, ...]) -> None:
    """Open what ``needs`` lists and is not open yet, dependencies first (async path)."""
    for need in needs:
        resource = need.provider
        if resource in scope.values or resource.last_overriding is not None:
            continue
        if need.deps:
            await open_async(scope, need.deps)
        initial = resource.initial()
        if drive_kind(initial) == "async":
            await scope.open(resource, need.name, initial)
        else:  # a sync resource in an async view: opened in the request's thread
            await sync_to_async(scope.open_sync)(resource, need.name, initial)


def open_sync(scope: RequestScope, needs: tuple[Need, ...]) -> None:
    """Open what ``needs`` lists and is not open yet, dependencies first (sync path)."""
    for need in needs:
        resource = need.provider
        if resource in scope.values or resource.last_overriding is not None:
            continue
        if need.deps:
            open_sync(scope, need.deps)
        initial = resource.initial()
        if drive_kind(initial) == "sync":
            scope.open_sync(resource, need.name, initial)
            continue
        _discard(initial)
        if here() is not None or _serving_loop() is None:
            msg = (
                f"The request-scoped resource {need.name!r} is async, and this sync view runs "
                "where no event loop serves the request (Django's sync test Client, a WSGI "
                "server): make the view async, serve it over ASGI, or make the resource sync."
            )
            raise RequestScopeError(msg)
        # Handed over to the sync view; opened (and later closed) on the serving loop.
        async_to_sync(_open_one)(scope, resource, need.name)


async def _open_one(scope: RequestScope, resource: RequestResource[Any], name: str) -> None:
    await scope.open(resource, name, resource.initial())


def _serving_loop() -> asyncio.AbstractEventLoop | None:
    """The loop that serves the request this sync thread works for, if any."""
    loop: asyncio.AbstractEventLoop | None = getattr(
        SyncToAsync.threadlocal, "main_event_loop", None
    )
    return loop


def note_failure(args: tuple[Any, ...], error: BaseException) -> None:
    """Remember ``error`` if it leaves the view of a request that has a scope."""
    scope = current.get()
    if scope is None or scope.request is None:
        return
    request = scope.request
    for argument in args[:2]:
        if argument is request or getattr(argument, "_request", None) is request:
            scope.fail(error)
            return


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
def fallback_scope(args: tuple[Any, ...], where: str, needs: tuple[Need, ...]) -> Iterator[None]:
    """Make current the scope of a request served without our handler, while inside.

    The scope is made on first use and closed when Django closes the response:
    ``BaseHandler`` adds ``request.close`` to the final response's closers, which
    every test client and WSGI server call once the body was consumed.
    """
    token = current.set(_scope_of(args, where, needs))
    try:
        yield
    finally:
        current.reset(token)


def _scope_of(args: tuple[Any, ...], where: str, needs: tuple[Need, ...]) -> RequestScope:
    request = request_of(args)
    if request is None:
        if all(need.provider.last_overriding is not None for need in needs):
            return RequestScope(label=where)  # every value is a test's: nothing to open
        msg = f"{where} uses a request-scoped provider and was not called with a request. "
        raise RequestScopeError(msg + _outside("It"))
    existing = request.__dict__.get(ATTRIBUTE)
    if isinstance(existing, RequestScope) and not existing.closed:
        return existing
    scope = RequestScope(label=request.path)
    bind(scope, request)
    original: Callable[[], None] = request.close

    def close() -> None:
        try:
            original()
        finally:
            close_fallback(scope)

    request.close = close  # type: ignore[method-assign]
    return scope


def close_fallback(scope: RequestScope) -> None:
    """Close a scope made by :func:`fallback_scope`, wherever the response is closed."""
    from lifespan_container._runtime import get_runtime  # noqa: PLC0415

    if not scope.opened:
        scope.closed = True
        return
    limit = cleanup_limit()
    loop = asyncio.get_running_loop() if here() is not None else None
    if loop is None and scope.all_sync:
        scope.close_sync(scope.error)
    elif loop is not None:  # closed on the loop's own thread: AsyncClient, async stream
        task = loop.create_task(scope.aclose(scope.error, limit, call_sync))
        closes = get_runtime().request_closes
        closes.add(task)
        task.add_done_callback(closes.discard)
    else:
        async_to_sync(scope.aclose)(scope.error, limit, call_sync)


async def call_sync(function: Callable[[], None]) -> None:
    """Run ``function`` in the request's thread (the one its sync view ran in)."""
    await sync_to_async(function)()


def cleanup_limit() -> Limit:
    """``REQUEST_CLEANUP_TIMEOUT`` as a limit."""
    from lifespan_container._settings import request_cleanup_limit  # noqa: PLC0415

    return request_cleanup_limit()


class request_scope:  # noqa: N801 (used like contextlib's functions)
    """Open a request scope of your own: ``async with request_scope(): ...``.

    For code that uses request-scoped providers outside a request served by Django:
    a test calling a service function directly, a management command, ``run()``,
    a background task. ``request`` is what ``CurrentRequest()`` gives inside
    (``None``: using it raises). The resources opened inside are closed at the
    exit, in reverse order, passed the exception that ends the block. The sync
    form (``with request_scope():``) opens sync resources only.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        label = request.path if request is not None else "request_scope()"
        self._scope = RequestScope(request, label)
        self._token: Any = None

    def _enter(self) -> None:
        if self._token is not None:
            msg = "A request_scope() can be entered once."
            raise RequestScopeError(msg)
        self._token = current.set(self._scope)

    async def __aenter__(self) -> None:
        self._enter()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        current.reset(self._token)
        await self._scope.aclose(error, cleanup_limit(), call_sync)

    def __enter__(self) -> None:
        self._enter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        current.reset(self._token)
        if self._scope.all_sync:
            self._scope.close_sync(error)
        else:
            async_to_sync(self._scope.aclose)(error, cleanup_limit(), call_sync)
