"""The lifespan state, as a view sees it."""

from __future__ import annotations

from typing import Any

__all__ = ["lifespan_state"]


def lifespan_state(request: Any) -> dict[str, Any]:
    """The lifespan state of the server, as passed into this request's scope.

    ASGI servers give every request a shallow copy of the ``state`` dict that the
    lifespan startup (an ``asgi_startup`` receiver) filled. Under a server that
    provides no state (daphne, WSGI ``runserver``, Django's test clients), this
    returns a new empty dict instead of raising ``KeyError``.
    """
    scope = getattr(request, "scope", None)
    state = scope.get("state") if isinstance(scope, dict) else None
    return state if isinstance(state, dict) else {}
