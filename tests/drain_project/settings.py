"""Settings of the drain project; every log line carries the process id of its worker."""

import os

SECRET_KEY = "tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["lifespan_container"]
ROOT_URLCONF = "tests.drain_project.urls"
DATABASES: dict[str, object] = {}
LIFESPAN_CONTAINER = {
    "CONTAINER": "tests.drain_project.containers.Container",
    "STARTUP_TIMEOUT": 20.0,
    "SHUTDOWN_TIMEOUT": float(os.environ.get("LC_SHUTDOWN_TIMEOUT", "1")),
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"pid": {"format": "pid=%(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "pid"}},
    "loggers": {
        # "Opened resource 'pool' ..." and "Closed resource 'pool' ..." are INFO records
        # of lifespan_container.resources.
        "lifespan_container": {"handlers": ["stderr"], "level": "INFO"},
        "tests.drain_project": {"handlers": ["stderr"], "level": "INFO"},
    },
}
