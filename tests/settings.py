"""Settings for the library's own tests."""

import os

SECRET_KEY = "tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "lifespan_container",
]
ROOT_URLCONF = "tests.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
LIFESPAN_CONTAINER = {
    "CONTAINER": os.environ.get("LC_TEST_CONTAINER", "tests.containers.Container"),
    "STARTUP_TIMEOUT": 10.0,
    "SHUTDOWN_TIMEOUT": 10.0,
}
LOGGING_CONFIG = None
