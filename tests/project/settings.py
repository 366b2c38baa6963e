"""A project served by real ASGI servers in the process-level tests.

Environment variables choose what it does, so one project serves every case:

- ``LC_EVENTS``: a file each process appends ``<pid> <event>`` lines to;
- ``LC_CONTAINER``: the container's dotted path (default: the working one);
- ``LC_FAILING_RECEIVER``: ``1`` connects a startup receiver that raises;
- ``LC_UPSTREAM``: the base URL of the ``upstream`` httpx client (the server's own);
- the ``OperationsContainer``'s variables, in ``tests/project/containers.py``.
"""

import os

BASE_DIR = os.environ.get("LC_BASE_DIR", os.path.dirname(__file__))  # noqa: PTH120 (watched by runasgi)
SECRET_KEY = "tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["rest_framework", "lifespan_container", "tests.project"]
ROOT_URLCONF = "tests.project.urls"
DATABASES: dict[str, object] = {}
LIFESPAN_CONTAINER = {
    "CONTAINER": os.environ.get("LC_CONTAINER", "tests.project.containers.Container"),
    "STARTUP_TIMEOUT": float(os.environ.get("LC_STARTUP_TIMEOUT", "20")),
    "SHUTDOWN_TIMEOUT": float(os.environ.get("LC_SHUTDOWN_TIMEOUT", "20")),
    "HEALTH_CHECK_TIMEOUT": float(os.environ.get("LC_HEALTH_CHECK_TIMEOUT", "5")),
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "lifespan_container": {"handlers": ["stderr"], "level": "INFO"},
        "django.request": {"handlers": ["stderr"], "level": "ERROR"},
    },
}
# No database, so no auth: DRF views run unauthenticated.
REST_FRAMEWORK: dict[str, object] = {
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
}
