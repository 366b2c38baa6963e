"""ASGI lifespan for Django, joined to a dependency-injector container.

The public names are re-exported here; everything else is private or lives in
its own documented module (``asgi``, ``signals``, ``exceptions``, ``testing``).
Importing the package imports nothing else: each name loads its module on first
use, so the pytest plugin costs nothing in a project that does not use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from lifespan_container.injection import Provide, inject
    from lifespan_container.per_request import CurrentRequest, RequestResource, request_scope
    from lifespan_container.runtime import get_container
    from lifespan_container.state import lifespan_state

__all__ = [
    "CurrentRequest",
    "Provide",
    "RequestResource",
    "get_container",
    "inject",
    "lifespan_state",
    "request_scope",
]

_HOMES = {
    "Provide": "lifespan_container.injection",
    "inject": "lifespan_container.injection",
    "get_container": "lifespan_container.runtime",
    "lifespan_state": "lifespan_container.state",
    "CurrentRequest": "lifespan_container.per_request",
    "RequestResource": "lifespan_container.per_request",
    "request_scope": "lifespan_container.per_request",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'lifespan_container' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
