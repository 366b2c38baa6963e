"""The lifespan signals, and how the handler sends them.

``asgi_startup``
    Sent by the ASGI handler on every ``lifespan.startup``, **after** every resource
    of the container opened: a receiver can use them (``get_container()``,
    ``@inject``). Startup completes when every receiver returned.

``asgi_shutdown``
    Sent on every ``lifespan.shutdown`` that follows a completed startup, **before**
    any resource closes: the resources are still open while receivers run.

Both are sent with ``sender`` set to the handler's class and these keyword
arguments:

- ``scope``: the lifespan scope from the server;
- ``state``: the lifespan state dict (``scope["state"]``), or ``None`` when the
  server provides none. What a startup receiver stores in it, the server copies
  into every request's scope (see :func:`lifespan_container.lifespan_state`).

``asgi_lifespan``
    django-asgi-lifespan's signal, sent on every ``lifespan.startup`` after the
    resources opened and before ``asgi_startup``, with ``sender`` (the handler's
    class), ``scope`` and ``state``. Each receiver returns a lifespan manager
    factory: a zero-argument callable giving an async context manager (an
    ``@asynccontextmanager`` function) that yields a mapping. The managers are
    entered together with those given to
    :func:`~lifespan_container.register.register_lifespan_manager`, their mappings
    merged into the state, and exited at shutdown after ``asgi_shutdown`` (see
    :mod:`lifespan_container.register` for the rules). Async receivers are awaited;
    sync receivers work too (they run off the event loop, like the other signals').

``resource_started``, ``resource_stopped``, ``resource_failed``
    Sent after each resource of the container opened, closed, or failed to, for
    metrics and tracing.

Async receivers of the lifespan signals are awaited concurrently, in the serving event loop. Sync
receivers run off the event loop, one after the other, in the thread Django uses
for thread-sensitive code (``sync_to_async``). A receiver that raises fails the
phase like a failing resource: at startup every opened resource is closed again
and the server is sent ``lifespan.startup.failed`` naming the receiver; at
shutdown every other receiver still runs, the resources still close, and all
failures are reported together in ``lifespan.shutdown.failed``.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "asgi_lifespan",
    "asgi_shutdown",
    "asgi_startup",
    "resource_failed",
    "resource_started",
    "resource_stopped",
]

asgi_startup = Signal()
"""Sent after every resource opened, before startup completes. Keyword arguments:
``scope``, ``state``."""
asgi_shutdown = Signal()
"""Sent when shutdown begins, before any resource closes. Keyword arguments:
``scope``, ``state``."""

asgi_lifespan = Signal()
"""Sent at startup, before ``asgi_startup``; each receiver returns a lifespan manager
factory. Keyword arguments: ``scope``, ``state``."""

resource_started = Signal()
"""A resource opened. Keyword arguments: ``name``, ``duration`` (seconds)."""
resource_stopped = Signal()
"""A resource closed. Keyword arguments: ``name``, ``duration`` (seconds)."""
resource_failed = Signal()
"""A resource failed to open or close. Keyword arguments: ``name``, ``duration``,
``action`` (``"start"`` or ``"stop"``), ``outcome`` (``"failed"``: it raised
``error``; ``"cancelled"``: it was cut short, ``error`` is ``None``)."""
