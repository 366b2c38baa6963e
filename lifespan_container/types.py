"""django-asgi-lifespan's type aliases, for code written against them.

.. code-block:: python

    from contextlib import asynccontextmanager

    from lifespan_container.types import LifespanManager, State


    @asynccontextmanager
    async def clients() -> LifespanManager:
        yield {"greeting": "hello"}
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, MutableMapping
from typing import Any, TypeAlias

__all__ = ["LifespanManager", "State"]

State: TypeAlias = MutableMapping[str, Any]
"""The lifespan state: what the lifespan managers yield, merged, and what requests get."""

LifespanManager: TypeAlias = AsyncGenerator[State, None]
"""What an ``@asynccontextmanager`` lifespan manager function returns before decoration."""
