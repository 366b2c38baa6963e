"""``request.state``: the lifespan state in every request, as django-asgi-lifespan sets it.

.. code-block:: python

    # settings.py
    MIDDLEWARE = [..., "lifespan_container.middleware.LifespanStateMiddleware"]


    # views.py
    async def greeting(request):
        return HttpResponse(request.state["greeting"])

``request.state`` is the state the server put into the request's scope (the same
object: servers give each request a shallow copy of the lifespan state). Where
there is none (WSGI ``runserver``, daphne, Django's test clients without
:class:`~lifespan_container.testing.LifespanAwareAsyncClient`), it is a new empty
dict, never a ``KeyError``. The middleware works in async and sync stacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from lifespan_container.state import lifespan_state

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["AsyncMiddleware", "LifespanStateMiddleware"]


class LifespanStateMiddleware:
    """Set ``request.state`` to the request's lifespan state (``{}`` without one)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        """Set ``request.state``, then call the rest of the stack (awaitable if async)."""
        if self.async_mode:
            return self.__acall__(request)
        request.state = lifespan_state(request)
        return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        request.state = lifespan_state(request)
        response: Awaitable[Any] = self.get_response(request)
        return await response


AsyncMiddleware = LifespanStateMiddleware
"""django-asgi-lifespan's other name for the middleware."""
