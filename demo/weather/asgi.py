"""ASGI entry point: serve with ``uvicorn weather.asgi:application --lifespan on``."""

import os

from lifespan_container.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weather.settings")

application = get_asgi_application()
