"""The Django-free engine the handler drives, usable on its own.

:class:`ResourceLifecycle` opens every ``providers.Resource`` of a
dependency-injector container (ordered, concurrent, all or nothing, bounded) and
closes them again (bounded, never half way); :class:`ResourceEvent` is what its
listener receives. They live in :mod:`lifespan_container.engine.lifecycle`; this
module is where they are imported from.
"""

from __future__ import annotations

from lifespan_container.engine.events import ResourceEvent
from lifespan_container.engine.lifecycle import ResourceLifecycle

__all__ = ["ResourceEvent", "ResourceLifecycle"]
