"""Settings of the navigator project: what the container's configuration is filled from."""

from __future__ import annotations

import os

SECRET_KEY = "navigator-tests-only"  # noqa: S105 (a test project)
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
INSTALLED_APPS = ["lifespan_container", "tests.navigator"]
ROOT_URLCONF = "tests.navigator.urls"
DATABASES: dict[str, object] = {}
USE_TZ = True

GITHUB_TOKEN = os.environ.get("NAVIGATOR_GITHUB_TOKEN", "token-from-settings")
GITHUB_REQUEST_TIMEOUT = 10
DEFAULT_QUERY = "Dependency Injector"
DEFAULT_LIMIT = "5"  # a string, as environment variables are: as_int() converts it

LIFESPAN_CONTAINER = {"CONTAINER": "tests.navigator.containers.Container"}
