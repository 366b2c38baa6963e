"""A gunicorn worker class: uvicorn's, with the lifespan shutdown on every stop signal.

.. code-block:: console

    gunicorn myproject.asgi:application -k lifespan_container.workers.UvicornWorker -w 4

Differences from ``uvicorn_worker.UvicornWorker``:

- **SIGQUIT runs the lifespan shutdown.** gunicorn's master answers SIGINT and
  SIGQUIT with a quick shutdown: it sends the workers SIGQUIT and kills them after
  ``--graceful-timeout``. The stock worker ignores SIGQUIT, so its resources are
  never closed. This one stops serving, runs the lifespan shutdown (bounded by
  ``SHUTDOWN_TIMEOUT``) and exits.
- **The lifespan mode follows the application.** This library's handler gets
  ``lifespan="on"`` (a failed startup stops the worker); Django's own
  ``ASGIHandler`` gets ``"off"``, without the "ASGI 'lifespan' protocol appears
  unsupported" line in every worker's log; any other application keeps ``"auto"``.
- **The drain is bounded, so the lifespan shutdown fits in ``--graceful-timeout``.**
  gunicorn's master kills a worker still running ``--graceful-timeout`` seconds after
  its stop signal. The stock worker lets uvicorn wait for requests without a limit,
  so a request that outlasts the graceful timeout gets the worker killed before its
  resources close. This one sets uvicorn's ``timeout_graceful_shutdown`` to
  ``--graceful-timeout - SHUTDOWN_TIMEOUT - 1 s`` (see :func:`drain_limit`):
  requests still running then are cancelled as uvicorn cancels them, and the
  lifespan shutdown has its ``SHUTDOWN_TIMEOUT`` before the kill. At boot, a
  WARNING in the worker's log says when the settings leave no time to drain.
- **The worker outlives uvicorn's re-raised SIGTERM.** uvicorn raises the stop
  signal again once it has stopped, and under gunicorn's default handler that ends
  the process at once. This worker exits normally instead (code 0), after the event
  loop has cancelled and awaited what the cancelled requests left running: Django's
  ``ASGIHandler`` may leave the view's task, with its query and pool connection.

Needs ``gunicorn`` and ``uvicorn-worker``
(``pip install "django-lifespan-container[gunicorn]"``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Final

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as StockUvicornWorker

__all__ = ["UvicornWorker", "drain_limit"]

_DRAIN_MARGIN: Final = 1.0
"""Seconds of ``--graceful-timeout`` left to neither the drain nor ``SHUTDOWN_TIMEOUT``.

For the worker to notice the signal (uvicorn looks every 0.1 s), uvicorn's own 0.1 s
pause before it drains, the cancelled requests to unwind, the process to exit and
the master to see it (it looks every 0.1 s)."""


def _lifespan_mode(app: object) -> str:
    """``"on"`` for this library's handler, ``"off"`` for Django's own, else ``"auto"``."""
    from django.core.handlers.asgi import ASGIHandler  # noqa: PLC0415

    from lifespan_container.handler import LifespanHandler  # noqa: PLC0415

    if isinstance(app, LifespanHandler):
        return "on"
    if isinstance(app, ASGIHandler):
        return "off"
    return "auto"


def drain_limit(
    graceful_timeout: float, shutdown_timeout: float, configured: float | None = None
) -> tuple[float, list[str]]:
    """The seconds uvicorn may wait for requests at shutdown, and what to warn about.

    ``graceful_timeout`` is gunicorn's ``--graceful-timeout``, ``shutdown_timeout``
    ``LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"]``, ``configured`` uvicorn's own
    ``timeout_graceful_shutdown`` if the worker's config sets one. The drain gets
    what is left of the graceful timeout after ``SHUTDOWN_TIMEOUT`` and
    :data:`_DRAIN_MARGIN`. When nothing is left, the arithmetic cannot work: the
    drain and the lifespan shutdown then share what is left after the margin,
    half each, and the shutdown may be killed before it ends. A smaller
    ``configured`` value is kept; a larger one is cut to the limit.
    """
    limit = graceful_timeout - shutdown_timeout - _DRAIN_MARGIN
    warnings: list[str] = []
    if limit <= 0:
        limit = max(graceful_timeout - _DRAIN_MARGIN, 0.0) / 2
        warnings.append(
            f'LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] ({shutdown_timeout:g} s) leaves no time '
            f"to drain requests within gunicorn's --graceful-timeout ({graceful_timeout:g} s), "
            f"after a {_DRAIN_MARGIN:g} s margin. The drain gets half of the rest: requests "
            f"still running {limit:g} s after the stop signal are cancelled, and a lifespan "
            f"shutdown longer than about {limit:g} s is killed. Set --graceful-timeout to at least "
            f"SHUTDOWN_TIMEOUT + {_DRAIN_MARGIN:g} s + the seconds requests may take to "
            f"finish (e.g. {shutdown_timeout + _DRAIN_MARGIN + 10:g} for 10 s), or lower "
            f"SHUTDOWN_TIMEOUT."
        )
    if configured is not None:
        if configured <= limit:
            limit = configured
        else:
            warnings.append(
                f"uvicorn's timeout_graceful_shutdown ({configured:g} s) is cut to {limit:g} s, "
                f"so that the lifespan shutdown (SHUTDOWN_TIMEOUT, {shutdown_timeout:g} s) "
                f"ends within gunicorn's --graceful-timeout ({graceful_timeout:g} s). To drain "
                f"for longer, raise --graceful-timeout to at least "
                f"{configured + shutdown_timeout + _DRAIN_MARGIN:g}."
            )
    return limit, warnings


def _runs_this_librarys_lifespan(mode: str) -> bool:
    """Whether an application of this lifespan ``mode`` runs this library's lifespan.

    ``"on"``: it is this library's handler. ``"auto"``: it may wrap it (Channels'
    ``ProtocolTypeRouter``, an ASGI middleware) when the library's app is installed.
    """
    if mode != "auto":
        return mode == "on"
    from django.apps import apps  # noqa: PLC0415
    from django.conf import settings  # noqa: PLC0415

    return settings.configured and apps.ready and apps.is_installed("lifespan_container")


class UvicornWorker(StockUvicornWorker):
    """uvicorn's gunicorn worker, closing the container's resources on SIGQUIT too.

    And always within gunicorn's ``--graceful-timeout``, by bounding the drain.
    """

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        self.config.lifespan = _lifespan_mode(self.wsgi)
        if _runs_this_librarys_lifespan(self.config.lifespan):
            self._bound_the_drain()
        server = Server(config=self.config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, self._stop, server)
        # Once stopped, uvicorn raises the stop signal again, under the handler it found.
        # gunicorn's SIG_DFL would kill the worker before asyncio.run cancels and awaits
        # the tasks the cancelled requests left behind (Django's ASGIHandler may leave
        # a view running, a query and its pool connection with it).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.handle_exit)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def _stop(self, server: Server) -> None:
        """SIGQUIT: stop like SIGTERM does, lifespan shutdown included."""
        self.alive = False
        server.should_exit = True

    def _bound_the_drain(self) -> None:
        """Set uvicorn's ``timeout_graceful_shutdown`` to :func:`drain_limit`; warn."""
        from django.core.exceptions import ImproperlyConfigured  # noqa: PLC0415

        from lifespan_container._settings import lifespan_settings  # noqa: PLC0415

        try:
            shutdown_timeout = lifespan_settings().shutdown_timeout
        except ImproperlyConfigured:
            return  # the lifespan startup fails, naming the problem
        seconds, warnings = drain_limit(
            self.cfg.graceful_timeout, shutdown_timeout, self.config.timeout_graceful_shutdown
        )
        for warning in warnings:
            self.log.warning(warning)
        # uvicorn annotates it as int; it goes to asyncio.wait_for, which takes a float.
        self.config.timeout_graceful_shutdown = seconds
