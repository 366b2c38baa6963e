from __future__ import annotations

import os
from typing import Any

from django.apps import AppConfig

from lifespan_container.signals import asgi_shutdown, asgi_startup
from tests.project.events import record


async def on_startup(**kwargs: Any) -> None:
    record("startup receiver")


def on_shutdown(**kwargs: Any) -> None:
    record("shutdown receiver")


async def warm_search_index(**kwargs: Any) -> None:
    raise RuntimeError("search index missing")


class ProjectConfig(AppConfig):
    name = "tests.project"
    label = "test_project"

    def ready(self) -> None:
        asgi_startup.connect(on_startup)
        asgi_shutdown.connect(on_shutdown)
        if os.environ.get("LC_FAILING_RECEIVER") == "1":
            asgi_startup.connect(warm_search_index)
