from __future__ import annotations

from django.apps import AppConfig

from lifespan_container.register import register_lifespan_manager
from lifespan_container.signals import asgi_shutdown, asgi_startup
from tests.dal_project.test_app.handlers import AppConfigClients, httpx_lifespan_manager


class DalTestAppConfig(AppConfig):
    name = "tests.dal_project.test_app"
    label = "dal_test_app"
    httpx_clients: AppConfigClients

    def ready(self) -> None:
        # Registered twice on purpose: django-asgi-lifespan enters it twice, we once.
        register_lifespan_manager(context_manager=httpx_lifespan_manager)
        register_lifespan_manager(context_manager=httpx_lifespan_manager)

        self.httpx_clients = AppConfigClients()
        asgi_startup.connect(self.httpx_clients.startup, weak=False)
        asgi_shutdown.connect(self.httpx_clients.shutdown, weak=False)
