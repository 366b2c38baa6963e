"""``lifespan()`` (public in :mod:`lifespan_container.testing`), in either form.

``run_lifespan`` is the body of ``async with lifespan()``: the real startup and
shutdown in the current loop, the overrides made in the block undone after it.
``Held`` keeps one open in a task of a loop thread between two calls, for ``with
lifespan()``: the startup and the shutdown run in the same task, as under ``async
with``, and the block's exception is thrown in at the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from lifespan_container._request_end import unfinished_closed
from lifespan_container._runtime import current_runtime
from lifespan_container._settings import lifespan_settings
from lifespan_container.engine.driver import drive_lifespan
from lifespan_container.engine.loop_thread import LoopThread, detached
from lifespan_container.exceptions import LifespanContainerError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    from lifespan_container.engine.protocol import ASGIApp

__all__ = ["BlockRaised", "Held", "default_application", "lifespan", "run_lifespan"]


def default_application() -> ASGIApp:
    """The project's handler: ``lifespan_container.asgi.get_asgi_application()``."""
    from lifespan_container.asgi import get_asgi_application  # noqa: PLC0415

    return get_asgi_application()


class BlockRaised(Exception):  # noqa: N818 (stands for the block's own exception)
    """Stands for a ``KeyboardInterrupt`` or ``SystemExit`` of the block on the loop."""


class Held:
    """A lifespan held open by a task of the loop thread, between two calls.

    The startup and the shutdown run in the same task, as under ``async with``; the
    block's exception is thrown in at the shutdown.
    """

    def __init__(self, application: ASGIApp | None) -> None:
        self.application = application
        self._task: asyncio.Task[None] | None = None
        self._end: asyncio.Future[None] | None = None

    async def start(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[dict[str, Any]] = loop.create_future()
        end: asyncio.Future[None] = loop.create_future()

        async def hold() -> None:
            async with run_lifespan(self.application) as state:
                started.set_result(state)
                await end

        self._end = end
        self._task = task = detached(hold())  # it outlives this call
        waiting: set[asyncio.Future[Any]] = {started, task}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            return started.result()
        task.result()  # raises the startup's failure
        msg = "The lifespan ended before its startup completed."  # pragma: no cover
        raise LifespanContainerError(msg)  # pragma: no cover

    async def stop(self, raised: BaseException | None) -> None:
        task, end = self._task, self._end
        if task is None or end is None:
            return
        traceback = None if raised is None else raised.__traceback__
        if raised is None:
            end.set_result(None)
        elif isinstance(raised, KeyboardInterrupt | SystemExit):
            end.set_exception(BlockRaised(repr(raised)))
        else:
            end.set_exception(raised)
        try:
            await task
        except BaseException as error:
            if error is raised or isinstance(error, BlockRaised):
                if raised is not None:  # it goes on as the block raised it, without our frames
                    raised.with_traceback(traceback)
                return  # the block's own exception goes on from the with statement
            raise


@contextlib.asynccontextmanager
async def run_lifespan(application: ASGIApp | None) -> AsyncIterator[dict[str, Any]]:
    """The lifespan in the current loop: the body of ``async with lifespan()``."""
    app = application if application is not None else default_application()
    settings = lifespan_settings()
    runtime = current_runtime()
    saved = runtime.overrides() if runtime is not None else None
    try:
        async with drive_lifespan(
            app, settings.startup_timeout + settings.shutdown_timeout
        ) as state:
            try:
                yield state
            finally:
                # Request scopes a test client closed on this loop close before the app's,
                # and those of responses it never closed.
                if runtime is not None:
                    if runtime.request_closes:
                        await asyncio.wait(set(runtime.request_closes))
                    await unfinished_closed(runtime)
    finally:
        # What the block overrode on the running container is undone with it.
        if runtime is not None and saved is not None:
            runtime.restore(saved)


class lifespan:  # noqa: N801 (used like contextlib's lower-case context managers)
    """Run the application's real lifespan startup, and on exit its real shutdown.

    ``application`` defaults to the project's handler
    (``lifespan_container.asgi.get_asgi_application()``); pass your own ASGI
    application (for example a Channels ``ProtocolTypeRouter``) if ``asgi.py``
    wraps it. The block gets the lifespan ``state`` dict, as a server keeps it.

    ``async with lifespan():`` runs the startup in the current event loop, so the
    resources belong to it: Django's ``AsyncClient``, ``@inject``-ed views called
    directly and :func:`lifespan_client` all work inside the block.

    ``with lifespan():`` (sync code: a ``TestCase`` method, a plain test) runs an
    event loop in a background thread for the block, and the lifespan on it. Django's
    sync ``Client`` (``self.client``, pytest-django's ``client``, DRF's
    ``APIClient``) then serves async views on that loop, where the resources were
    opened, and ``async_to_sync`` in a sync view reaches them too; the ORM calls of
    those views still run in the test's thread, in its transaction. The loop and its
    thread end with the block.

    A failed startup raises
    :class:`~lifespan_container.exceptions.StartupFailedError` with the
    ``lifespan.startup.failed`` message; a failed shutdown raises
    :class:`~lifespan_container.exceptions.ShutdownFailedError` (unless the block
    itself raised: then that exception goes on, and the shutdown failure is logged).
    """

    def __init__(self, application: ASGIApp | None = None) -> None:
        self.application = application
        self._running: contextlib.AbstractAsyncContextManager[dict[str, Any]] | None = None
        self._thread: LoopThread | None = None
        self._held: Held | None = None

    async def __aenter__(self) -> dict[str, Any]:
        self._refuse_a_second_entry()
        self._running = run_lifespan(self.application)
        return await self._running.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        running, self._running = self._running, None
        if running is None:
            return None
        return await running.__aexit__(exc_type, exc, traceback)

    def __enter__(self) -> dict[str, Any]:
        self._refuse_a_second_entry()
        thread = LoopThread("lifespan-loop")
        thread.__enter__()
        held = Held(self.application)
        try:
            state = thread.call(held.start)
        except BaseException:
            thread.__exit__(None, None, None)
            raise
        self._thread, self._held = thread, held
        return state

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        thread, held = self._thread, self._held
        self._thread = self._held = None
        if thread is None or held is None:
            return
        try:
            thread.call(held.stop, exc)
        finally:
            thread.__exit__(None, None, None)

    def _refuse_a_second_entry(self) -> None:
        if self._running is not None or self._thread is not None:
            msg = "This lifespan() is running already: use a new lifespan() for each block."
            raise RuntimeError(msg)
