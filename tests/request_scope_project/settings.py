"""A project served by real ASGI servers: one request-scoped PostgreSQL connection.

Served by ``tests/servers/test_request_scope_servers.py``. Environment variables:

- ``LC_RS_DSN``: the PostgreSQL the pool connects to;
- ``LC_RS_APP_NAME``: the pool's ``application_name`` (the test finds its backends);
- ``LC_EVENTS``: the file each process appends ``<pid> <event>`` lines to.
"""

SECRET_KEY = "tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["lifespan_container"]
ROOT_URLCONF = "tests.request_scope_project.urls"
DATABASES: dict[str, object] = {}
LIFESPAN_CONTAINER = {
    "CONTAINER": "tests.request_scope_project.containers.Container",
    "STARTUP_TIMEOUT": 20.0,
    "SHUTDOWN_TIMEOUT": 10.0,
    "REQUEST_CLEANUP_TIMEOUT": 10.0,
}
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
