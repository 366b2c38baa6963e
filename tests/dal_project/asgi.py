"""The drop-in project's ASGI application, as a django-asgi-lifespan user writes it."""

import os

from lifespan_container.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.dal_project.settings")

application = get_asgi_application()
