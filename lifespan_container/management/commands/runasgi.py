"""``manage.py runasgi``: the development server, with the lifespan of production.

Serves the project's ASGI application under uvicorn with ``--lifespan on`` and
auto-reload: every code change runs a full lifespan shutdown in the old process
and a fresh startup in the new one, so local development opens and closes the
container's resources exactly as a production server does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEFAULT_ADDRESS = "127.0.0.1:8000"


class Command(BaseCommand):
    """Serve the project under uvicorn, lifespan on, reloading on code changes."""

    help = (
        "Serve the project under uvicorn with the ASGI lifespan on and auto-reload "
        "(each reload runs a full shutdown and a fresh startup)."
    )
    requires_system_checks = "__all__"

    def add_arguments(self, parser: CommandParser) -> None:  # noqa: D102
        parser.add_argument(
            "addrport", nargs="?", default=DEFAULT_ADDRESS, help="[host:]port to listen on."
        )
        parser.add_argument(
            "--app",
            help="The ASGI application as module:attribute (default: settings.ASGI_APPLICATION, "
            "or WSGI_APPLICATION's module with asgi in place of wsgi).",
        )
        parser.add_argument("--noreload", action="store_false", dest="reload")

    def handle(self, *args: Any, **options: Any) -> None:  # noqa: ARG002, D102
        import uvicorn  # noqa: PLC0415 (a dependency of serving, not of the library)

        host, port = parse_address(options["addrport"])
        app = options["app"] or application_path()
        self.stdout.write(f"Serving {app} on http://{host}:{port}/ with the lifespan on.")
        base_dir = getattr(settings, "BASE_DIR", None)
        uvicorn.run(
            app,
            host=host,
            port=port,
            lifespan="on",
            reload=options["reload"],
            reload_dirs=[str(base_dir)] if base_dir else None,
        )


def parse_address(addrport: str) -> tuple[str, int]:
    """``"8000"`` or ``"127.0.0.1:8000"`` -> ``("127.0.0.1", 8000)``."""
    host, _, port = addrport.rpartition(":")
    if not port.isdigit():
        msg = f"{addrport!r} is not a port or host:port, e.g. 8000 or 127.0.0.1:8000."
        raise CommandError(msg)
    return host or "127.0.0.1", int(port)


def application_path() -> str:
    """``module:attribute`` of the project's ASGI application, from settings."""
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not dotted:
        wsgi = getattr(settings, "WSGI_APPLICATION", None)
        if wsgi and ".wsgi." in f".{wsgi}":
            dotted = f".{wsgi}".replace(".wsgi.", ".asgi.", 1).lstrip(".")
    if not dotted or "." not in dotted:
        msg = (
            "Cannot tell where the ASGI application is: set settings.ASGI_APPLICATION "
            '(e.g. "myproject.asgi.application") or pass --app myproject.asgi:application.'
        )
        raise CommandError(msg)
    module, _, attribute = dotted.rpartition(".")
    return f"{module}:{attribute}"
