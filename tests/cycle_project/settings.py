"""A project whose requests open Django database connections, served as a process.

Served by ``tests/services/test_request_cycle_connections.py``, by our handler
(``asgi.py``) or by Django's own (``django_asgi.py``). Environment variables:

- ``LC_CYCLE_DSN``: the PostgreSQL of ``DATABASES["default"]``;
- ``LC_CYCLE_APP_NAME``: its ``application_name`` (the test counts its backends);
- ``LC_CYCLE_MAX_AGE``: ``CONN_MAX_AGE``;
- ``LC_CYCLE_MIDDLEWARE``: ``"mixin"`` or ``"sync"``, the middleware that queries
  before every view (see ``views.py``), or empty for none;
- ``LC_CYCLE_HANDLER``: ``"ours"`` (``FAST_PATH`` on), ``"ours-no-fast-path"``
  (``FAST_PATH`` off) or ``"django"`` (without ``lifespan_container`` installed).

The process runs without the cyclic garbage collector. Django keeps each thread's
connection in a thread-local ``DatabaseWrapper``, which holds reference cycles: a
connection left open by a thread that has ended closes only when the collector
frees its wrapper, at a moment that depends on the process's allocations. Without
it such a connection stays open until ``/collect`` runs the collector, so the test
counts the same backends on every run (and sees them close at ``/collect``).
"""

from __future__ import annotations

import gc
import os

from psycopg.conninfo import conninfo_to_dict

_dsn = conninfo_to_dict(os.environ["LC_CYCLE_DSN"])
_handler = os.environ["LC_CYCLE_HANDLER"]
_middleware = os.environ.get("LC_CYCLE_MIDDLEWARE", "")

gc.disable()

SECRET_KEY = "tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.cycle_project.views"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": str(_dsn.get("dbname", "test")),
        "USER": str(_dsn.get("user", "postgres")),
        "PASSWORD": str(_dsn.get("password", "")),
        "HOST": str(_dsn.get("host", "127.0.0.1")),
        "PORT": str(_dsn.get("port", "5432")),
        "CONN_MAX_AGE": int(os.environ["LC_CYCLE_MAX_AGE"]),
        "OPTIONS": {"application_name": os.environ["LC_CYCLE_APP_NAME"]},
    }
}
MIDDLEWARE = {
    "": [],
    "mixin": ["tests.cycle_project.views.QueryingMixinMiddleware"],
    "sync": ["tests.cycle_project.views.querying_sync_middleware"],
}[_middleware]
if _handler == "django":
    INSTALLED_APPS: list[str] = []
else:
    INSTALLED_APPS = ["lifespan_container"]
    LIFESPAN_CONTAINER = {"CONTAINER": None, "FAST_PATH": _handler == "ours"}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "lifespan_container": {"handlers": ["stderr"], "level": "INFO"},
        "django.request": {"handlers": ["stderr"], "level": "ERROR"},
    },
}
