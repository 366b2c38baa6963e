"""ASGI lifespan for Django, joined to a dependency-injector container.

The public names are re-exported here; everything else is private or lives in
its own documented module (``asgi``, ``signals``, ``exceptions``, ``testing``).
"""

from __future__ import annotations

from lifespan_container._runtime import get_container
from lifespan_container.injection import Provide, inject
from lifespan_container.state import lifespan_state

__all__ = ["Provide", "get_container", "inject", "lifespan_state"]
