from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from lifespan_container import get_container

logger = logging.getLogger(__name__)

QUERY_SECONDS = 8  # as in the query below


async def slow_query(request: HttpRequest) -> JsonResponse:
    """Hold a pool connection for ``QUERY_SECONDS``, in PostgreSQL."""
    logger.info("Slow request arrives.")
    pool = get_container().pool()
    async with pool.connection() as connection:
        logger.info("Slow query begins.")
        await connection.execute("SELECT pg_sleep(8)")
    logger.info("Slow query ends.")
    return JsonResponse({"slept": QUERY_SECONDS})


urlpatterns = [
    path("health/", include("lifespan_container.urls")),
    path("slow-query", slow_query),
]
