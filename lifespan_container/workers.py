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

Needs ``gunicorn`` and ``uvicorn-worker``
(``pip install "django-lifespan-container[gunicorn]"``).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as StockUvicornWorker

__all__ = ["UvicornWorker"]


def lifespan_mode(app: object) -> str:
    """``"on"`` for this library's handler, ``"off"`` for Django's own, else ``"auto"``."""
    from django.core.handlers.asgi import ASGIHandler  # noqa: PLC0415

    from lifespan_container.handler import LifespanHandler  # noqa: PLC0415

    if isinstance(app, LifespanHandler):
        return "on"
    if isinstance(app, ASGIHandler):
        return "off"
    return "auto"


class UvicornWorker(StockUvicornWorker):
    """uvicorn's gunicorn worker, closing the container's resources on SIGQUIT too."""

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        self.config.lifespan = lifespan_mode(self.wsgi)
        server = Server(config=self.config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, self._stop, server)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def _stop(self, server: Server) -> None:
        """SIGQUIT: stop like SIGTERM does, lifespan shutdown included."""
        self.alive = False
        server.should_exit = True
