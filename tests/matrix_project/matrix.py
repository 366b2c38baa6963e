"""The matrix's axes and the names its resources give their connections.

Shared by the served project and by the test, which must not import the views: the
test process's system checks would see their markers.
"""

from __future__ import annotations

from typing import Final

REDIS_KINDS: Final = ("redis_async", "redis_sync")
POSTGRES_KINDS: Final = (
    "psycopg_async_pool",
    "psycopg_pool",
    "asyncpg_pool",
    "sqlalchemy_async_engine",
)
HTTP_KINDS: Final = ("httpx_async", "httpx_sync", "aiohttp_session")
KINDS: Final = (*REDIS_KINDS, *POSTGRES_KINDS, *HTTP_KINDS)
"""The kinds of value, each the name of a resource of the container."""

VIEWS: Final = (
    "async_function",
    "sync_function",
    "class_async",
    "class_sync",
    "drf_apiview",
    "drf_api_view",
)
"""The kinds of view; the URL of a cell is ``/<kind>/<view>``."""


def connection_name(tag: str, kind: str) -> str:
    """The Redis ``client_name`` or PostgreSQL ``application_name`` of resource ``kind``."""
    return f"{tag}-{kind}"


def counter_key(tag: str, who: str) -> str:
    """The Redis key a view INCRs: its own, so the count is its request number."""
    return f"{tag}:{who}"
