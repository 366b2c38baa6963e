"""An event loop in a thread of its own, reached from sync code through asgiref.

A lifespan's resources belong to the event loop that opened them. Sync code (a
Django ``TestCase`` and its ``self.client``) has no loop: asgiref's
``async_to_sync``, which Django's sync handler uses to run an async view, makes a
new loop for each call, where those resources cannot be used.

:class:`LoopThread` runs one loop in a background thread for a block. While it
runs, the thread that started it is one of the loop's sync threads for asgiref,
as a ``sync_to_async`` thread is: every ``async_to_sync`` call made in it (Django's
handler, a sync view's own) runs on the loop while the thread waits, and the
``sync_to_async(thread_sensitive=True)`` work of those calls (Django's ORM) comes
back to run in this thread, with its database connection and transaction.

It imports nothing from Django.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync

from lifespan_container._redact import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine
    from types import TracebackType

__all__ = ["LoopThread", "detached"]

T = TypeVar("T")

logger = get_logger("lifespan_container")

STOP_WAIT: Final = 10.0
"""Seconds the loop's thread gets to cancel what is left and end, once stopped."""

_UNSET: Final = object()


class LoopThread:
    """A running event loop in a daemon thread; ``with`` starts it and stops it.

    Inside the block, :meth:`call` runs a coroutine function on the loop and waits
    for its result, and any ``async_to_sync`` call made in the entering thread does
    the same. On exit the tasks still pending on the loop are cancelled and awaited,
    async generators and the default executor are shut down, the loop is closed and
    the thread joined (bounded by :data:`STOP_WAIT`).

    Blocks may overlap in one thread in any order: ``async_to_sync`` reaches the
    loop of the newest block still open, and :meth:`call` always reaches its own.
    """

    _adopted = threading.local()
    """Per thread: ``stack``, the loop threads it entered and has not exited, oldest
    first; ``saved``, what asgiref knew of the thread before the first of them."""

    def __init__(self, name: str = "lifespan-loop", *, adopt: bool = True) -> None:
        self.name = name
        self.adopt = adopt
        """Whether ``async_to_sync`` in the entering thread reaches this loop (else
        only :meth:`call` does: a loop for a server of the test's own)."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._owner: int | None = None
        self._callers: list[Any] = []  # the waiting callers' asgiref executors, oldest first

    def __enter__(self) -> Self:
        if self.loop is not None:
            msg = f"The loop thread {self.name!r} is running already: enter it once."
            raise RuntimeError(msg)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            msg = (
                "A loop thread is for sync code; this thread runs an event loop already. "
                "In async code, use `async with` and the current loop."
            )
            raise RuntimeError(msg)
        loop = asyncio.new_event_loop()
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(loop, started), name=self.name)
        thread.daemon = True  # a test that hangs must not also hang the interpreter's exit
        thread.start()
        started.wait()
        self.loop, self._thread = loop, thread
        if self.adopt:
            self._owner = threading.get_ident()
            stack = self._stack()
            if not stack:
                self._adopted.saved = _asgiref_knows()
            stack.append(self)
            _tell_asgiref(loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._release()
        finally:
            self._stop()

    def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await function(*args)`` on the loop; this thread waits for the result.

        Work the coroutine sends to ``sync_to_async(thread_sensitive=True)`` runs in
        this thread meanwhile, also from tasks that outlive an earlier call (the
        lifespan held between two calls).
        """
        loop = self.loop
        if loop is None:
            msg = "The loop thread is not running: call it inside its `with` block."
            raise RuntimeError(msg)
        if not self.adopt:
            return asyncio.run_coroutine_threadsafe(_awaited(function, *args), loop).result()
        before = _asgiref_knows()
        _tell_asgiref(loop)  # this loop, whichever block of this thread is the newest
        try:
            result: T = async_to_sync(self._with_this_thread)(function, *args)
        finally:
            _restore(before)
        return result

    async def _with_this_thread(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``function(*args)``; meanwhile the calling thread is the loop's sync thread.

        Calls from several threads at once: the newest caller still waiting gets the
        loop's sync work, and each call takes back only its own thread.
        """
        loop = asyncio.get_running_loop()
        executor = getattr(AsyncToSync.executors, "current", None)
        if executor is None:  # pragma: no cover (async_to_sync always sets one)
            return await function(*args)
        self._callers.append(executor)
        AsyncToSync.loop_thread_executors[loop] = executor
        try:
            return await function(*args)
        finally:
            self._callers.remove(executor)
            if self._callers:
                AsyncToSync.loop_thread_executors[loop] = self._callers[-1]
            else:
                AsyncToSync.loop_thread_executors.pop(loop, None)

    def _stack(self) -> list[LoopThread]:
        stack: list[LoopThread] | None = getattr(self._adopted, "stack", None)
        if stack is None:
            stack = self._adopted.stack = []
        return stack

    def _release(self) -> None:
        """Give this thread back to the newest block still open, or as it was before."""
        if self._owner is None:
            return
        if threading.get_ident() != self._owner:
            msg = (
                "A loop thread is exited in the thread that entered it; its loop is "
                "stopped all the same."
            )
            raise RuntimeError(msg)
        self._owner = None
        stack = self._stack()
        stack.remove(self)
        if stack:
            loop = stack[-1].loop
            if loop is not None:
                _tell_asgiref(loop)
        else:
            _restore(self._adopted.saved)

    def _stop(self) -> None:
        loop, thread = self.loop, self._thread
        self.loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_WAIT)
        if thread.is_alive():  # pragma: no cover (a task that ignores cancellation)
            logger.warning(
                "The event loop's thread %r did not end within %g s of its stop: a task "
                "ignores its cancellation. It is left running (a daemon thread).",
                self.name,
                STOP_WAIT,
            )

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            try:
                _cancel_pending(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()


def detached(coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task for ``coroutine`` that may outlive the call that starts it.

    A task inherits the context of the ``async_to_sync`` call that creates it, and
    with it the calling thread's executor, which quits when that call returns: its
    later ``sync_to_async`` calls would fail. This task forgets it; its
    thread-sensitive work goes to the thread of the :meth:`LoopThread.call` that
    runs at the time.
    """
    context = contextvars.copy_context()
    context.run(setattr, AsyncToSync.executors, "current", None)
    return asyncio.get_running_loop().create_task(coroutine, context=context)


def _asgiref_knows() -> tuple[object, object]:
    """What asgiref knows of this thread: the loop its ``async_to_sync`` reaches."""
    local = SyncToAsync.threadlocal
    return (
        getattr(local, "main_event_loop", _UNSET),
        getattr(local, "main_event_loop_pid", _UNSET),
    )


def _tell_asgiref(loop: asyncio.AbstractEventLoop) -> None:
    """Make this thread a sync thread of ``loop`` for asgiref's ``async_to_sync``."""
    local = SyncToAsync.threadlocal
    local.main_event_loop = loop
    local.main_event_loop_pid = os.getpid()


def _restore(known: tuple[object, object]) -> None:
    local = SyncToAsync.threadlocal
    for name, saved in zip(("main_event_loop", "main_event_loop_pid"), known, strict=True):
        if saved is _UNSET:
            if hasattr(local, name):
                delattr(local, name)
        else:
            setattr(local, name, saved)


async def _awaited(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await function(*args)


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks left on ``loop`` and wait for them, as ``asyncio.run`` does."""
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception of a task left on the loop at its stop",
                    "exception": task.exception(),
                    "task": task,
                }
            )
