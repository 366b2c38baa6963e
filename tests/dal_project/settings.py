"""Settings of the drop-in project: django-asgi-lifespan's, plus our app.

``DAL_UPSTREAM_URL`` is where the views send their upstream request: the suite
starts a local HTTP server on 127.0.0.1 and sets it (no request leaves the
machine).
"""

import os

SECRET_KEY = "tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "lifespan_container",
    "tests.dal_project.test_app",
]
ROOT_URLCONF = "tests.dal_project.urls"
MIDDLEWARE = ["lifespan_container.middleware.LifespanStateMiddleware"]
# The project of a django-asgi-lifespan user has no container.
LIFESPAN_CONTAINER = {"CONTAINER": None}
DAL_UPSTREAM_URL = os.environ.get("DAL_UPSTREAM_URL", "")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}
