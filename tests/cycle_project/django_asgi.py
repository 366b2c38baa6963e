"""Django's own ASGI handler, the reference the test compares ours with."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.cycle_project.settings")

application = get_asgi_application()
