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
from typing import Any

from lifespan_container.exceptions import RequestScopeError

__all__ = ["aexit", "drive_kind", "enter_sync", "exit_sync", "open_value"]


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
            msg = f"The request-scoped generator {initial!r} did not yield a value."
            raise RequestScopeError(msg) from None
    kind = type(initial)
    if hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__"):
        return await kind.__aenter__(initial), initial, True
    value, closer = enter_sync(initial)
    return value, closer, False


def enter_sync(initial: object) -> tuple[object, object]:
    """Open a sync ``initial`` in this thread: ``(value, closer or None)``."""
    if inspect.isgenerator(initial):
        try:
            return next(initial), initial
        except StopIteration:
            msg = f"The request-scoped generator {initial!r} did not yield a value."
            raise RequestScopeError(msg) from None
    kind = type(initial)
    if hasattr(kind, "__enter__") and hasattr(kind, "__exit__"):
        return kind.__enter__(initial), initial
    return initial, None


async def aexit(closer: Any, error: BaseException | None) -> None:
    """Close what :func:`open_value` opened (an async closer), passing ``error``."""
    if inspect.isasyncgen(closer):
        try:
            if error is None:
                await closer.__anext__()
            else:
                await closer.athrow(error)
        except StopAsyncIteration:
            return
        except BaseException as exc:
            if exc is error:
                return  # re-raised what it was given: it saw it
            raise
        await closer.aclose()
        msg = f"The request-scoped generator {closer!r} yielded more than once."
        raise RequestScopeError(msg)
    await type(closer).__aexit__(closer, *exc_info(error))


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
        msg = f"The request-scoped generator {closer!r} yielded more than once."
        raise RequestScopeError(msg)
    type(closer).__exit__(closer, *exc_info(error))


def exc_info(error: BaseException | None) -> tuple[Any, Any, Any]:
    if error is None:
        return None, None, None
    return type(error), error, error.__traceback__
