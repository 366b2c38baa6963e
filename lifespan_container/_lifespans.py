"""The lifespan that :func:`lifespan_container.testing.lifespan` runs, in either form.

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

from lifespan_container._runtime import current_runtime
from lifespan_container._settings import lifespan_settings
from lifespan_container.engine.driver import drive_lifespan
from lifespan_container.exceptions import LifespanContainerError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from lifespan_container.engine.protocol import ASGIApp

__all__ = ["BlockRaised", "Held", "default_application", "run_lifespan"]


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
        self._task = task = asyncio.ensure_future(hold())
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
                # Request scopes a test client closed on this loop close before the app's.
                if runtime is not None and runtime.request_closes:
                    await asyncio.wait(set(runtime.request_closes))
    finally:
        # What the block overrode on the running container is undone with it.
        if runtime is not None and saved is not None:
            runtime.restore(saved)
