from __future__ import annotations

from typing import Any

import httpx
from django.http import HttpRequest, JsonResponse

from lifespan_container import Provide, inject, lifespan_state
from myproject.containers import Container


@inject
async def weather(
    request: HttpRequest, city: str, http: httpx.AsyncClient = Provide[Container.http]
) -> JsonResponse:
    response = await http.get(f"/weather/{city}")
    return JsonResponse(response.json())


@inject
async def stations(request: HttpRequest, db: Any = Provide[Container.db_pool]) -> JsonResponse:
    async with db.connection() as connection:
        cursor = await connection.execute("SELECT name FROM stations ORDER BY name")
        rows = await cursor.fetchall()
    return JsonResponse({"stations": [name for (name,) in rows]})


async def build_info(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"build": lifespan_state(request).get("build")})
