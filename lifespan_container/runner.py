"""The container's resources outside HTTP: scripts, management commands, workers.

The same lifecycle as under an ASGI server (ordered, concurrent, all or nothing,
bounded by ``STARTUP_TIMEOUT`` and ``SHUTDOWN_TIMEOUT``, the ``resource_*``
signals), around your own code instead of a server:

.. code-block:: python

    # a script: DJANGO_SETTINGS_MODULE=myproject.settings python sync_prices.py
    from lifespan_container.runner import run


    @inject
    async def main(http: httpx.AsyncClient = Provide[Container.http]) -> None: ...


    run(main())

The ``asgi_startup`` and ``asgi_shutdown`` signals are not sent: they belong to
the ASGI lifespan (their receivers get its ``scope`` and ``state``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import django
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.apps import apps
from django.core.management.base import BaseCommand

from lifespan_container._runtime import checked_runtime
from lifespan_container.exceptions import ShutdownFailedError
from lifespan_container.handler import start, stop

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

__all__ = ["ResourceCommand", "open_resources", "run", "with_resources"]

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.asynccontextmanager
async def open_resources() -> AsyncIterator[None]:
    """Open the container's resources for the block, in the running loop; close them after.

    Sets Django up first if nothing has yet (``DJANGO_SETTINGS_MODULE`` must be
    set). A failed startup raises
    :class:`~lifespan_container.exceptions.StartupFailedError` naming each
    resource that failed, after closing the ones that opened. A failed shutdown
    raises :class:`~lifespan_container.exceptions.ShutdownFailedError`, unless the
    block raised: then the block's exception goes on and the failure is logged.
    """
    if not apps.ready:
        django.setup()
    runtime = checked_runtime()
    await start(runtime)
    try:
        yield
    except BaseException:
        with contextlib.suppress(ShutdownFailedError):  # stop() logged it
            await stop(runtime)
        raise
    await stop(runtime)


def run(main: Coroutine[Any, Any, R]) -> R:
    """Run the coroutine ``main`` with the container's resources open, like ``asyncio.run``.

    A new event loop opens the resources, runs ``main``, closes the resources and
    ends; ``main``'s result is returned and what it raises is raised.
    Request-scoped providers (``RequestResource``) need a scope of their own:
    ``async with request_scope(): ...`` around each unit of work.
    """
    given: object = main  # checked at run time: run(main) is an easy slip
    if not asyncio.iscoroutine(given):
        msg = (
            f"run() takes a coroutine, as asyncio.run() does: run(main()), not {given!r}. "
            "For a sync function, decorate it with @with_resources."
        )
        raise TypeError(msg)
    if asyncio._get_running_loop() is not None:  # noqa: SLF001 (no exception, no warning)
        main.close()
        msg = (
            "run() cannot be called from a running event loop, as asyncio.run() cannot. "
            "In async code, use `async with lifespan_container.runner.open_resources():`."
        )
        raise RuntimeError(msg)

    async def with_open_resources() -> R:
        async with open_resources():
            return await main

    try:
        return asyncio.run(with_open_resources())
    finally:
        main.close()  # never awaited if the startup failed: no "never awaited" warning


@overload
def with_resources(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]: ...
@overload
def with_resources(func: Callable[P, R]) -> Callable[P, R]: ...
def with_resources(func: Callable[P, Any]) -> Callable[P, Any]:
    """Make ``func`` run with the container's resources open; the result is a sync function.

    An async ``func`` is awaited in the event loop that opened the resources. A
    sync ``func`` runs in a worker thread of that loop, like a sync view under an
    ASGI server: sync resources can be used directly, loop-bound ones through
    ``asgiref.sync.async_to_sync``. Decorate a management command's ``handle``::

        class Command(BaseCommand):
            @with_resources
            async def handle(self, *args, **options): ...
    """
    coroutine_function: Callable[P, Coroutine[Any, Any, Any]] = (
        func if iscoroutinefunction(func) else sync_to_async(func)
    )

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        return run(coroutine_function(*args, **kwargs))

    return wrapper


class ResourceCommand(BaseCommand):
    """A management command whose ``handle`` runs with the container's resources open.

    ``handle`` may be ``async def`` (awaited in the loop that opened the
    resources) or sync (run in a worker thread of that loop, see
    :func:`with_resources`). Request-scoped providers need a scope of their
    own: ``async with request_scope():`` (``with`` in a sync ``handle``)::

        class Command(ResourceCommand):
            help = "Sync the prices."

            @inject
            async def handle(self, *args, http=Provide[Container.http], **options): ...
    """

    def handle(self, *args: Any, **options: Any) -> Any:
        """Your command's work: ``async def`` or sync, with the resources open.

        Returns ``Any`` so that an ``async def handle`` type-checks as an override.
        """
        raise NotImplementedError("subclasses of ResourceCommand must provide a handle() method")

    def execute(self, *args: Any, **options: Any) -> str | None:
        """Run Django's ``execute`` (checks, output) with ``handle`` inside the resources."""
        handle = self.handle
        self.handle = with_resources(handle)  # type: ignore[method-assign]
        try:
            return super().execute(*args, **options)
        finally:
            del self.handle
