"""How each kind of value a request-scoped initializer returns is opened and closed.

- an async generator: ``__anext__`` opens it; closing resumes it (``athrow`` the
  exception, if there is one) and expects it to finish;
- a generator: the same with ``next`` and ``throw``;
- an object with ``__aenter__``/``__aexit__`` (an ``asynccontextmanager``, an
  ``AsyncResource``) or ``__enter__``/``__exit__`` (a context-manager class, a
  ``contextmanager`` factory, a ``Resource``): entered, then exited with the
  exception;
- a coroutine: awaited, and its result opened the same way;
- anything else is the value itself, with nothing to close.

A generator that re-raises what it was thrown, or swallows it, closed fine; one
that yields again, or raises something else, failed to close.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from types import AsyncGeneratorType
from typing import Any

from lifespan_container.exceptions import RequestScopeError

__all__ = [
    "Resume",
    "close_step",
    "did_not_yield",
    "drive_kind",
    "drop",
    "enter_sync",
    "exit_sync",
    "open_value",
    "yielded_twice",
]


def drive_kind(initial: object) -> str:
    """``"async"`` if ``initial`` must be opened on an event loop, else ``"sync"``."""
    if inspect.isasyncgen(initial) or inspect.iscoroutine(initial):
        return "async"
    kind = type(initial)
    if hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__"):
        return "async"
    return "sync"


async def open_value(initial: object) -> tuple[object, object, bool]:
    """Open ``initial``: ``(value, closer or None, whether the closer is async)``."""
    if inspect.iscoroutine(initial):
        initial = await initial
    if inspect.isasyncgen(initial):
        try:
            return await initial.__anext__(), initial, True
        except StopAsyncIteration:
            raise did_not_yield(initial) from None
    kind = type(initial)
    if hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__"):
        return await kind.__aenter__(initial), initial, True
    value, closer = enter_sync(initial)
    return value, closer, False


def drop(initial: object) -> None:
    """Drop an initializer's result that is not opened (a coroutine must be closed)."""
    if inspect.iscoroutine(initial):
        initial.close()


def enter_sync(initial: object) -> tuple[object, object]:
    """Open a sync ``initial`` in this thread: ``(value, closer or None)``."""
    if inspect.isgenerator(initial):
        try:
            return next(initial), initial
        except StopIteration:
            raise did_not_yield(initial) from None
    kind = type(initial)
    if hasattr(kind, "__enter__") and hasattr(kind, "__exit__"):
        return kind.__enter__(initial), initial
    return initial, None


def close_step(closer: Any, error: BaseException | None) -> Any:
    """The awaitable that closes an async closer: resume the generator, or ``__aexit__``.

    Driven by the caller (its first step at once, see :class:`Resume`).
    """
    if isinstance(closer, AsyncGeneratorType):
        return closer.__anext__() if error is None else closer.athrow(error)
    return type(closer).__aexit__(closer, *exc_info(error))


class Resume:
    """Await the rest of an awaitable whose first step the caller already took.

    ``pending`` is what that step yielded (a future to wait for); the task's
    sends and throws (a cancellation) go on to the awaitable, as ``await`` would.
    """

    __slots__ = ("pending", "step")

    def __init__(self, step: Any, pending: object) -> None:
        self.step = step
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        step, pending = self.step, self.pending
        while True:
            try:
                sent = yield pending
            except BaseException as thrown:  # noqa: BLE001 (passed on, as await would)
                try:
                    pending = step.throw(thrown)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = step.send(sent)
            except StopIteration as stop:
                return stop.value


def did_not_yield(generator: object) -> RequestScopeError:
    """The error for a request-scoped generator that finished without a value."""
    return RequestScopeError(f"The request-scoped generator {generator!r} did not yield a value.")


def yielded_twice(generator: object) -> RequestScopeError:
    """The error for a request-scoped generator that yielded again when closed."""
    return RequestScopeError(f"The request-scoped generator {generator!r} yielded more than once.")


def exit_sync(closer: Any, error: BaseException | None) -> None:
    """Close a sync closer in this thread, passing ``error``."""
    if inspect.isgenerator(closer):
        try:
            if error is None:
                next(closer)
            else:
                closer.throw(error)
        except StopIteration:
            return
        except BaseException as exc:
            if exc is error:
                return
            raise
        closer.close()
        raise yielded_twice(closer)
    type(closer).__exit__(closer, *exc_info(error))


def exc_info(error: BaseException | None) -> tuple[Any, Any, Any]:
    """``error`` as the three arguments of ``__exit__``."""
    if error is None:
        return None, None, None
    return type(error), error, error.__traceback__
