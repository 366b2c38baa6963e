"""Settings of the demo: a weather service that calls an upstream API and a database.

Everything has an embedded default, so the demo runs with nothing but Python:

- ``UPSTREAM_URL``: the weather API; by default the demo serves one itself, under
  ``/upstream/`` (``DEMO_PORT``, 8000 by default, is where the demo listens);
- ``DATABASE_URL``: a ``postgresql://`` URL for a real psycopg pool; by default a
  SQLite file in the demo directory, through aiosqlite;
- ``REDIS_URL``: a Redis server for caching forecasts; no cache by default.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "rest_framework",
    "lifespan_container",
    "weather",
]
ROOT_URLCONF = "weather.urls"
TEMPLATES = [  # the index page: weather/templates/weather/index.html
    {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
]
DATABASES: dict[str, object] = {}  # the demo's data lives behind the `db` resource
USE_TZ = True

DEMO_PORT = int(os.environ.get("DEMO_PORT", "8000"))
UPSTREAM_URL = os.environ.get("UPSTREAM_URL", f"http://127.0.0.1:{DEMO_PORT}/upstream")
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'weather.sqlite3'}")
REDIS_URL = os.environ.get("REDIS_URL") or None

LIFESPAN_CONTAINER = {
    "CONTAINER": "weather.containers.Container",
    "STARTUP_TIMEOUT": 15.0,
    "SHUTDOWN_TIMEOUT": 15.0,
}

REST_FRAMEWORK = {
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "lifespan_container": {"handlers": ["console"], "level": "INFO"},
        # DEBUG also shows each request-scoped resource (`conn`) opening and closing.
        "lifespan_container.resources": {"level": "DEBUG"},
        "weather": {"handlers": ["console"], "level": "INFO"},
    },
}
