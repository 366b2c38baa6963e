"""The project the docs' testing recipes run against (copied into each pytester dir)."""

SECRET_KEY = "docs-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "lifespan_container",
    "myproject",
]
ROOT_URLCONF = "myproject.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
LIFESPAN_CONTAINER = {"CONTAINER": "myproject.containers.Container"}
