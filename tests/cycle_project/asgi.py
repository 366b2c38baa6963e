import os

from lifespan_container.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.cycle_project.settings")

application = get_asgi_application()
