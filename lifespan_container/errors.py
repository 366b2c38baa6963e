"""django-asgi-lifespan's exceptions, for code that catches them.

``BaseLifespanHandlerError`` is this library's base exception,
:class:`~lifespan_container.exceptions.LifespanContainerError`: catching it
catches every exception the library raises on purpose.
"""

from __future__ import annotations

from lifespan_container.exceptions import LifespanContainerError, MissingScopeStateError

__all__ = ["BaseLifespanHandlerError", "MissingScopeStateError"]

BaseLifespanHandlerError = LifespanContainerError
