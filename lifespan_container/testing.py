"""Test helpers: run the real lifespan, talk to the application, override providers.

Usable with any test runner; the pytest plugin (:mod:`lifespan_container.pytest_plugin`)
turns them into fixtures.

.. code-block:: python

    from lifespan_container.testing import lifespan, lifespan_client, override


    async def test_weather(fake_http):
        with override(Container.http, fake_http):  # the real client is never opened
            async with lifespan_client() as client:  # real startup ... real shutdown
                response = await client.get("/weather/oslo")
        assert response.status_code == 200
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar, overload

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers, providers
from django.test import AsyncClient

from lifespan_container._configuration import fill_configuration
from lifespan_container._lifespans import default_application, lifespan
from lifespan_container._redact import get_logger
from lifespan_container._runtime import Runtime, current_runtime, set_runtime
from lifespan_container.engine.driver import client_for
from lifespan_container.exceptions import (
    LifespanContainerError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from types import TracebackType

    import httpx

    from lifespan_container.engine.protocol import ASGIApp
    from lifespan_container.types import State

__all__ = [
    "LifespanAwareAsyncClient",
    "Overrides",
    "lifespan",
    "lifespan_client",
    "override",
    "use_container",
    "with_lifespan",
]

logger = get_logger("lifespan_container")

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.asynccontextmanager
async def lifespan_client(
    application: ASGIApp | None = None,
    *,
    base_url: str = "http://testserver",
    **client_options: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` that talks to the application in-process, lifespan running.

    The real startup runs first and the real shutdown after the block, as with
    :func:`lifespan`. Each request gets a shallow copy of the lifespan ``state`` in
    its scope, the way ASGI servers pass it. ``client_options`` go to
    ``httpx.AsyncClient`` (headers, timeout, follow_redirects...). Needs httpx.
    """
    app = application if application is not None else default_application()
    async with lifespan(app) as state, client_for(app, state, base_url, **client_options) as client:
        yield client


@overload
def with_lifespan(
    func: Callable[P, R], *, application: ASGIApp | None = None
) -> Callable[P, R]: ...
@overload
def with_lifespan(
    func: None = None, *, application: ASGIApp | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def with_lifespan(func: Callable[P, R] | None = None, *, application: ASGIApp | None = None) -> Any:
    """Run a test (function or ``TestCase`` method, sync or async) inside :func:`lifespan`.

    An async test runs it in its own event loop (``async with lifespan()``); a sync
    test on a loop in a background thread (``with lifespan()``), where Django's sync
    ``Client`` serves the async views::

        class WeatherTests(TestCase):
            @with_lifespan
            def test_forecast(self):
                response = self.client.get("/weather/oslo")

            @with_lifespan
            async def test_forecast_async(self):
                response = await self.async_client.get("/weather/oslo")
    """

    def decorate(test: Callable[P, R]) -> Callable[P, R]:
        if iscoroutinefunction(test):

            @functools.wraps(test)
            async def run(*args: Any, **kwargs: Any) -> Any:
                async with lifespan(application):
                    return await test(*args, **kwargs)

            return run  # type: ignore[return-value]

        @functools.wraps(test)
        def run_sync(*args: P.args, **kwargs: P.kwargs) -> R:
            with lifespan(application):
                return test(*args, **kwargs)

        return run_sync

    return decorate if func is None else decorate(func)


class override:  # noqa: N801 (used like contextlib's lower-case context managers)
    """Replace a provider of the project's container, for a block or a test.

    ``target`` is a provider of the container class (``Container.http``), its
    dotted name (``"http"``) or a provider of the running container. ``replacement``
    is a value (a fake client, a fake pool), or a provider (``providers.Object``,
    ``providers.Factory``...). A ``Resource`` that is overridden when the lifespan
    starts is not opened. The override is undone on exit, also when the block
    raises. Works as a context manager and as a decorator of sync and async
    functions.
    """

    def __init__(self, target: providers.Provider[Any] | str, replacement: object) -> None:
        self.target = target
        self.value = replacement
        self.replacement = _as_provider(replacement)
        self._provider: providers.Provider[Any] | None = None
        self._option: contextlib.AbstractContextManager[Any] | None = None

    def __enter__(self) -> providers.Provider[Any]:
        from lifespan_container._markers import find_option, find_provider  # noqa: PLC0415
        from lifespan_container._runtime import get_container  # noqa: PLC0415

        container = get_container()
        provider = find_option(container, self.target) or find_provider(container, self.target)
        if provider is None:
            msg = (
                f"override({self.target!r}, ...): the project's container has no such "
                "provider. Name one of its providers (Container.http) or its dotted name."
            )
            raise LifespanContainerError(msg)
        if isinstance(provider, providers.ConfigurationOption):
            # An option takes a value, set on its configuration; exiting undoes it.
            self._option = provider.override(self.value)
            return self.replacement
        provider.override(self.replacement)
        self._provider = provider
        return self.replacement

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        option, self._option = self._option, None
        if option is not None:
            option.__exit__(None, None, None)
        provider, self._provider = self._provider, None
        if provider is None:
            return
        # Undo ours, and any override a test stacked on it without undoing.
        while self.replacement in provider.overridden:
            provider.reset_last_overriding()

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Use as a decorator: the override is in place while ``func`` runs."""
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_run(*args: Any, **kwargs: Any) -> Any:
                with override(self.target, self.replacement):
                    return await func(*args, **kwargs)

            return async_run  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with override(self.target, self.replacement):
                return func(*args, **kwargs)

        return run


def _as_provider(replacement: object) -> providers.Provider[Any]:
    if isinstance(replacement, providers.Resource):
        msg = (
            "override() takes a value or a provider, not a providers.Resource: a resource "
            "opened by the override would belong to no lifespan, and nothing would close "
            "it. Open the fake in the test (async with ... as fake:) and override with it."
        )
        raise LifespanContainerError(msg)
    if isinstance(replacement, providers.Provider):
        return replacement
    return providers.Object(replacement)


class Overrides:
    """Overrides applied one by one and undone together, newest first.

    The pytest plugin's ``overrides`` fixture is one, reset after each test::

        def test_weather(overrides, fake_http):
            overrides(Container.http, fake_http)
    """

    def __init__(self) -> None:
        self._applied: list[override] = []

    def __call__(self, target: providers.Provider[Any] | str, replacement: object) -> None:
        """Override ``target`` with ``replacement`` until :meth:`reset`."""
        applied = override(target, replacement)
        applied.__enter__()
        self._applied.append(applied)

    def reset(self) -> None:
        """Undo every override, newest first."""
        while self._applied:
            self._applied.pop().__exit__(None, None, None)


@contextlib.contextmanager
def use_container(
    container: containers.Container | type[containers.DeclarativeContainer] | None,
) -> Iterator[Runtime]:
    """Make ``container`` the process's container for the block, then put the previous back.

    ``container`` is a container class (instantiated here, its configurations
    filled from settings as the app does), a new instance, or ``None`` (a
    project with no container); not the instance already in use. The block gets the new
    :class:`~lifespan_container.runtime.Runtime`: ``get_container()``, ``@inject``,
    the handler, the probes and :func:`lifespan` all use it. Nothing is opened:
    run :func:`lifespan` inside the block for that. For tests and benchmarks that
    need a container other than the one in ``LIFESPAN_CONTAINER["CONTAINER"]``::

        with use_container(TestContainer) as runtime:
            async with lifespan_client(LifespanHandler(runtime)) as client:
                ...
    """
    if isinstance(container, type):
        container = container()
        fill_configuration(container)
    current = current_runtime()
    if container is not None and current is not None and container is current.container:
        msg = (
            "use_container() takes another container: this one is already the process's "
            "container, and two runtimes cannot both open its resources. Pass its class "
            "(a fresh instance is made) or a new instance."
        )
        raise LifespanContainerError(msg)
    # The new runtime puts its guards on the container's resources: they come off
    # again at the end, so the instance can be used by another runtime after.
    saved = Runtime.snapshot(container)
    runtime = Runtime(container)
    previous = set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(previous)
        Runtime.restore_snapshot(saved)


class LifespanAwareAsyncClient(AsyncClient):
    """Django's ``AsyncClient``, passing a lifespan ``state`` in every request's scope.

    As django-asgi-lifespan's: each request's scope gets ``state`` (the same dict),
    so ``request.state`` (:mod:`lifespan_container.middleware`) and
    :func:`~lifespan_container.lifespan_state` see it. ``state`` defaults to a new
    empty dict. Used as an async context manager, it also runs the real lifespan
    (:func:`lifespan`, of ``application`` or the project's handler): the startup on
    entry, the shutdown on exit, and in between the requests get the state the
    lifespan filled (the lifespan managers' values), with the entries of a given
    ``state`` on top (they win over a manager's of the same key)::

        async with LifespanAwareAsyncClient() as client:
            response = await client.get("/greeting")

    ``defaults`` go to ``AsyncClient`` (``headers=``, ``raise_request_exception=``...).
    """

    def __init__(
        self,
        *,
        state: State | None = None,
        application: ASGIApp | None = None,
        **defaults: Any,
    ) -> None:
        super().__init__(**defaults)
        self.state: State = state if state is not None else {}
        self.application = application
        self._running: contextlib.AsyncExitStack | None = None
        self._given: State | None = None

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        # Django's (undeclared in django-stubs): the scope every request starts from.
        scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
        scope["state"] = self.state
        return scope

    async def __aenter__(self) -> Self:
        """Run the real lifespan startup; the requests get its state until the exit."""
        if self._running is not None:
            msg = "This LifespanAwareAsyncClient already runs a lifespan: enter it once."
            raise LifespanContainerError(msg)
        running = contextlib.AsyncExitStack()
        state = await running.enter_async_context(lifespan(self.application))
        state.update(self.state)  # what the test gave, as django-asgi-lifespan passes it
        self._running, self._given, self.state = running, self.state, state
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Run the real lifespan shutdown; the requests get the given state again."""
        running, self._running = self._running, None
        if self._given is not None:
            self.state, self._given = self._given, None
        if running is not None:
            await running.__aexit__(exc_type, exc, traceback)
