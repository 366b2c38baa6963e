"""The runtime of this process: its container, the lifecycle of its resources, its lifespan.

.. code-block:: python

    from lifespan_container.runtime import get_runtime

    runtime = get_runtime()
    runtime.phase  # "serving" between the lifespan startup and shutdown
    runtime.lifecycle  # the engine's ResourceLifecycle, or None without a container

Implemented in :mod:`lifespan_container._runtime`; this module is where its
public names are imported from. Tests install another container with
:func:`lifespan_container.testing.use_container`.
"""

from __future__ import annotations

from lifespan_container._runtime import Runtime, get_container, get_runtime

__all__ = ["Runtime", "get_container", "get_runtime"]
