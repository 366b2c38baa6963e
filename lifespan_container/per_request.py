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

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from asgiref.sync import sync_to_async
from dependency_injector import providers, resources
from django.http import HttpRequest

from lifespan_container._settings import request_cleanup_limit
from lifespan_container.engine.drive import drop
from lifespan_container.engine.request_scope import RequestScope, current, drive_kind
from lifespan_container.exceptions import RequestScopeError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
    from contextlib import AbstractAsyncContextManager, AbstractContextManager
    from types import TracebackType

    from lifespan_container.engine.limits import Limit
    from lifespan_container.engine.request_close import CallSync

__all__ = ["CurrentRequest", "RequestResource", "request_scope"]

T = TypeVar("T")


_CALLABLE_PROVIDE: Any = providers.Callable._provide  # type: ignore[attr-defined]  # noqa: SLF001
"""What ``providers.Callable`` does when called: resolve the arguments, call the initializer."""


class CurrentRequest(providers.Provider[HttpRequest]):
    """Provides the ``HttpRequest`` being served (request-scoped).

    Only request-scoped providers (``RequestResource``, ``Factory`` ...) may use it;
    ``manage.py check`` reports a ``Resource`` or a ``Singleton`` that does.
    """

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HttpRequest:  # noqa: ARG002
        scope = current.get()
        request = scope.request if scope is not None else None
        if request is None:
            raise RequestScopeError(outside("CurrentRequest()"))
        return request  # type: ignore[return-value]


class RequestResource(providers.Callable[T], Generic[T]):
    """A resource that lives for one request: takes what ``providers.Resource`` takes.

    An async or sync generator function (the code after ``yield`` is the
    cleanup), a context-manager class or factory, or a
    ``resources.Resource``/``AsyncResource`` subclass; with the arguments to pass
    it, which may be app-scoped providers, ``CurrentRequest()`` and other
    request-scoped providers.
    """

    # Typed as providers.Resource is: Provide[Container.conn] is the yielded value.
    @overload
    def __init__(
        self, provides: type[resources.Resource[T]] | None = None, *args: Any, **kwargs: Any
    ) -> None: ...
    @overload
    def __init__(
        self, provides: type[resources.AsyncResource[T]] | None = None, *args: Any, **kwargs: Any
    ) -> None: ...
    @overload
    def __init__(
        self,
        provides: Callable[..., AbstractContextManager[T]] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self,
        provides: Callable[..., AbstractAsyncContextManager[T]] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self, provides: Callable[..., Iterator[T]] | None = None, *args: Any, **kwargs: Any
    ) -> None: ...
    @overload
    def __init__(
        self, provides: Callable[..., AsyncIterator[T]] | None = None, *args: Any, **kwargs: Any
    ) -> None: ...
    @overload
    def __init__(
        self,
        provides: Callable[..., Coroutine[Any, Any, T]] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None: ...
    def __init__(self, provides: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(provides, *args, **kwargs)

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        scope = current.get()
        name = name_of(self)
        if scope is None:
            raise RequestScopeError(outside(name))
        values = scope.values
        if self in values:
            return values[self]  # type: ignore[return-value]
        initial = self.initial(args, kwargs)
        if drive_kind(initial) == "async":
            drop(initial)
            msg = (
                f"The request-scoped resource {name!r} is async and not open yet in this "
                "request: ask for it with Provide[...] on an @inject function (which opens "
                "it on the event loop), or open it with await on an async path first."
            )
            raise RequestScopeError(msg)
        return scope.open_sync(self, name, initial)  # type: ignore[return-value]

    def initial(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> object:
        """Call the initializer with its injected arguments: the generator, the CM..."""
        if args or kwargs:
            return _CALLABLE_PROVIDE(self, args, kwargs)
        return self.maker()()

    def maker(self) -> providers.Callable[Any]:
        """A plain ``Callable`` with the same initializer and injections (made once).

        Calling it is four times cheaper than ``Callable._provide`` through this
        subclass; the injections are the same providers, so their overrides apply.
        """
        maker = self.__dict__.get("_lifespan_maker")
        if maker is None:
            maker = providers.Callable(self.provides, *self.args, **self.kwargs)
            self.__dict__["_lifespan_maker"] = maker
        return maker


def outside(name: str) -> str:
    return (
        f"{name} was used outside a request: request-scoped providers have a value only "
        "while a request is served (or inside lifespan_container.request_scope()). In a "
        "management command, run(), a startup receiver or a background task, open a scope "
        "of your own: `async with request_scope(): ...` or `with request_scope(): ...`."
    )


def name_of(provider: providers.Provider[Any]) -> str:
    """The provider's path in its container (known once a marker resolved it)."""
    name = getattr(provider, "_lifespan_name", None)
    if isinstance(name, str):
        return name
    provides = getattr(provider, "provides", None)
    return str(getattr(provides, "__qualname__", None) or type(provider).__name__)


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
        if self._token is not None or self._scope.closed:
            msg = "A request_scope() can be entered once."
            raise RequestScopeError(msg)
        self._token = current.set(self._scope)

    def _reset(self) -> None:
        token, self._token = self._token, None
        current.reset(token)

    async def __aenter__(self) -> None:
        self._enter()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._reset()
        finally:
            await self._scope.aclose(error, *_closing())

    def __enter__(self) -> None:
        self._scope.async_refused = (
            "the sync `with request_scope():` opens sync values only; use "
            "`async with request_scope():` in async code."
        )
        self._enter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._reset()
        finally:
            self._scope.close_sync(error)


def _closing() -> tuple[Limit, CallSync]:
    return cleanup_limit(), call_sync


async def call_sync(function: Callable[[], None]) -> None:
    """Run ``function`` in the request's thread (the one its sync view ran in)."""
    await sync_to_async(function)()


def cleanup_limit() -> Limit:
    """``REQUEST_CLEANUP_TIMEOUT`` as a limit."""
    return request_cleanup_limit()
