"""Lifespan managers, as django-asgi-lifespan registers them.

.. code-block:: python

    # myapp/apps.py
    from django.apps import AppConfig

    from lifespan_container.register import register_lifespan_manager


    class MyAppConfig(AppConfig):
        name = "myapp"

        def ready(self):
            register_lifespan_manager(context_manager=clients)

Each registered factory's async context manager is entered at every lifespan
startup, **after** the container's resources opened and **before** the
``asgi_startup`` receivers run (so they see the state), and exited at shutdown
**after** the ``asgi_shutdown`` receivers and **before** the resources close.
The rules are this library's:

- the managers are entered concurrently, within ``STARTUP_TIMEOUT``; if one fails
  to enter, an ``asgi_startup`` receiver fails or the time passes, every manager
  already entered is exited again, then the resources close, and the server gets
  ``lifespan.startup.failed`` naming the manager (``module.qualname`` of its
  factory) and the error;
- what each yields is a mapping merged into the lifespan state; yielding anything
  else, or two managers yielding the same key, fails the startup (naming the
  managers and the key);
- at shutdown every manager is exited, last registered first, even when another's
  exit fails or hangs (each exit may use the time left of ``SHUTDOWN_TIMEOUT``,
  less a reserve kept for the managers after it); the failures are reported together in
  ``lifespan.shutdown.failed``;
- registering the same factory again changes nothing: it is entered once.

The factories returned by ``asgi_lifespan`` receivers follow the same rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from lifespan_container._managers import REGISTERED

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from lifespan_container.engine.managers import Factories
    from lifespan_container.types import State

__all__ = ["register_lifespan_manager", "registered_managers"]

registered_managers: Final[Factories] = REGISTERED
"""The registered factories: iterate it; ``remove(factory)`` and ``clear()`` for tests."""


def register_lifespan_manager(
    *, context_manager: Callable[[], AbstractAsyncContextManager[State]]
) -> None:
    """Enter ``context_manager()`` at every lifespan startup, exit it at shutdown.

    ``context_manager`` is a zero-argument callable giving an async context manager
    (an ``@asynccontextmanager`` function) that yields a mapping, merged into the
    lifespan state. Call it in an ``AppConfig.ready()``. Registering the same
    callable twice registers it once.
    """
    REGISTERED.add(context_manager)
