"""The ``LIFESPAN_CONTAINER`` setting, validated, as the library reads it.

.. code-block:: python

    from lifespan_container.conf import lifespan_settings

    lifespan_settings().health_check_timeout  # 5.0 unless the project sets it

The setting is read and validated in :mod:`lifespan_container._settings`, which
also owns every system check id; this module is where its public names are
imported from.
"""

from __future__ import annotations

from lifespan_container._settings import LifespanSettings, lifespan_settings

__all__ = ["LifespanSettings", "lifespan_settings"]
