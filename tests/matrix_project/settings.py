"""Settings of the matrix project; the environment says where the services are.

- ``LC_MATRIX_TAG``: prefix of the names the resources give their connections;
- ``LC_MATRIX_DSN``: the PostgreSQL DSN; ``LC_MATRIX_REDIS``: the Redis URL;
- ``LC_MATRIX_UPSTREAM``: the base URL of the HTTP clients (the served app itself).
"""

SECRET_KEY = "tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["rest_framework", "lifespan_container"]
ROOT_URLCONF = "tests.matrix_project.urls"
DATABASES: dict[str, object] = {}
LIFESPAN_CONTAINER = {
    "CONTAINER": "tests.matrix_project.containers.Container",
    "STARTUP_TIMEOUT": 30.0,
    "SHUTDOWN_TIMEOUT": 30.0,
}
# Every record goes to stderr as "LEVEL logger: message": the library's INFO records
# ("Opened resource ...", "Closed resource ..."), and anything at WARNING or above
# from anywhere (django.request's errors, asyncio's unclosed sessions). The test
# reads stderr for them.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_slow_callback_reports": {"()": "tests.matrix_project.logs.DropSlowCallbackReports"}
    },
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "lifespan_container": {"level": "INFO"},
        "asyncio": {"filters": ["no_slow_callback_reports"]},
    },
}
# No database, so no auth: DRF views run unauthenticated.
REST_FRAMEWORK: dict[str, object] = {
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
}
