from __future__ import annotations

from typing import Any

from django.apps import AppConfig


async def remember_build(state: dict[str, Any] | None, **kwargs: Any) -> None:
    if state is not None:
        state["build"] = "2026.11"


class MyProjectConfig(AppConfig):
    name = "myproject"

    def ready(self) -> None:
        from lifespan_container.signals import asgi_startup  # noqa: PLC0415

        asgi_startup.connect(remember_build)
