"""The default health checks against the real PostgreSQL and Redis, failing ones, and reports.

Reports: the health view and `manage.py resources` mask passwords, and the listing names
the check each resource gets (or none).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import psycopg_pool
import pytest
import redis
import redis.asyncio
from dependency_injector import containers, providers
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container.engine.health_checks import default_check
from lifespan_container.handler import LifespanHandler
from lifespan_container.health import health_check, run_checks
from lifespan_container.lifecycle import ResourceLifecycle
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan_client
from tests.servers.process import free_port

Install = Callable[[Any], Runtime]


async def async_pool(dsn: str) -> AsyncIterator[psycopg_pool.AsyncConnectionPool]:
    async with psycopg_pool.AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        yield pool


def sync_pool(dsn: str) -> Iterator[psycopg_pool.ConnectionPool]:
    with psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        yield pool


async def asyncpg_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(dsn, min_size=1, max_size=1) as pool:
        yield pool


async def async_redis(url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.from_url(url, socket_connect_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


def sync_redis(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        yield client
    finally:
        client.close()


async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def every_kind(dsn: str, redis_url: str) -> containers.DynamicContainer:
    built = containers.DynamicContainer()
    built.async_pool = providers.Resource(async_pool, dsn)
    built.sync_pool = providers.Resource(sync_pool, dsn)
    built.asyncpg_pool = providers.Resource(asyncpg_pool, dsn)
    built.async_redis = providers.Resource(async_redis, redis_url)
    built.sync_redis = providers.Resource(sync_redis, redis_url)
    built.http = providers.Resource(http_client)
    return built


async def checked(built: containers.Container, timeout: float = 5) -> dict[str, Any]:
    lifecycle = ResourceLifecycle(built)
    assert await lifecycle.start() == []
    try:
        return {r.name: r for r in await run_checks(lifecycle, timeout)}
    finally:
        assert await lifecycle.stop(10) == []


@pytest.mark.asyncio
@pytest.mark.services
async def test_every_default_check_passes_against_the_real_services(
    postgres_dsn: str, redis_url: str
) -> None:
    results = await checked(every_kind(postgres_dsn, redis_url))
    assert {name: (r.status, r.check) for name, r in results.items()} == {
        "async_pool": ("ok", "psycopg_pool.AsyncConnectionPool: SELECT 1"),
        "sync_pool": ("ok", "psycopg_pool.ConnectionPool: SELECT 1"),
        "asyncpg_pool": ("ok", "asyncpg.Pool: SELECT 1"),
        "async_redis": ("ok", "redis.asyncio.Redis: PING"),
        "sync_redis": ("ok", "redis.Redis: PING"),
        "http": ("ok", "httpx.AsyncClient: not closed"),
    }
    assert all(r.latency is not None and r.latency > 0 for r in results.values())


async def unreachable_pool(dsn: str) -> AsyncIterator[psycopg_pool.AsyncConnectionPool]:
    """Opens without connecting (min_size=0), as a pool does when the database went away."""
    pool = psycopg_pool.AsyncConnectionPool(dsn, min_size=0, max_size=1, open=False, timeout=0.5)
    async with pool:
        yield pool


async def closed_http_client() -> AsyncIterator[httpx.AsyncClient]:
    client = httpx.AsyncClient()
    await client.aclose()  # closed by mistake: every request would fail
    yield client


@pytest.mark.asyncio
@pytest.mark.services
async def test_default_checks_fail_when_the_service_is_unreachable(postgres_dsn: str) -> None:
    closed = free_port()
    built = containers.DynamicContainer()
    built.db = providers.Resource(
        unreachable_pool, f"postgresql://postgres@127.0.0.1:{closed}/test"
    )
    built.cache = providers.Resource(async_redis, f"redis://127.0.0.1:{closed}/0")
    built.http = providers.Resource(closed_http_client)
    results = await checked(built)
    assert results["db"].status == "failing"
    assert results["db"].error is not None
    assert results["db"].error.startswith("PoolTimeout: ")
    assert results["cache"].status == "failing"
    assert results["cache"].error is not None
    assert results["cache"].error.startswith("ConnectionError: ")
    assert results["http"].status == "failing"
    assert results["http"].error == "the check returned False"


def test_defaults_never_import_the_libraries_they_know() -> None:
    """A type is only looked for in a module already imported."""
    saved = sys.modules.pop("asyncpg")
    try:
        assert default_check(object()) is None
        assert "asyncpg" not in sys.modules
    finally:
        sys.modules["asyncpg"] = saved


# -- what reports say: credentials masked, and which check each resource gets ------------------


def closed_pool(conninfo: str) -> Iterator[psycopg_pool.ConnectionPool]:
    """A real pool of a server that does not answer: opens (min_size=0), never connects."""
    with psycopg_pool.ConnectionPool(
        conninfo, min_size=0, max_size=1, open=False, timeout=0.5
    ) as pool:
        yield pool


def select_one_naming_the_server(pool: psycopg_pool.ConnectionPool) -> None:
    """A declared check whose error names the server, as checks' errors often do."""
    try:
        with pool.connection() as connection:
            connection.execute("SELECT 1")
    except psycopg_pool.PoolTimeout as exc:
        msg = f"no connection to {pool.conninfo}"
        raise ConnectionError(msg) from exc


def refused(conninfo: str) -> Iterator[object]:
    msg = f"could not open {conninfo}"
    raise ConnectionRefusedError(msg)
    yield "never"  # type: ignore[unreachable]  # pragma: no cover


def with_passwords(port: int) -> containers.DynamicContainer:
    """Pools whose DSNs carry the password hunter2, as a URL and as keywords."""
    built = containers.DynamicContainer()
    built.url_pool = providers.Resource(
        closed_pool, f"postgresql://postgres:hunter2@127.0.0.1:{port}/test"
    )
    built.keyword_pool = providers.Resource(
        closed_pool, f"host=127.0.0.1 port={port} dbname=test user=postgres password=hunter2"
    )
    health_check(built.url_pool)(select_one_naming_the_server)
    health_check(built.keyword_pool)(select_one_naming_the_server)
    return built


@pytest.mark.asyncio
async def test_the_health_view_masks_the_password_in_a_failing_checks_error(
    install_container: Install, settings: SettingsWrapper
) -> None:
    """Under DEBUG the body has the error, with ``****`` in place of the password."""
    settings.DEBUG = True
    settings.LIFESPAN_CONTAINER = {"CONTAINER": None, "HEALTH_CHECK_TIMEOUT": 10.0}
    port = free_port()
    runtime = install_container(with_passwords(port))
    async with lifespan_client(LifespanHandler(runtime)) as http:
        response = await http.get("/health/")
    assert response.status_code == 503
    resources = response.json()["resources"]
    assert resources["url_pool"]["error"] == (
        f"ConnectionError: no connection to postgresql://postgres:****@127.0.0.1:{port}/test"
    )
    assert resources["keyword_pool"]["status"] == "failing"
    assert "password=****" in resources["keyword_pool"]["error"]
    assert "hunter2" not in response.text


def test_resources_check_masks_the_password_of_a_failing_pool(
    install_container: Install,
) -> None:
    """``manage.py resources --check``: the table, the JSON and the CommandError."""
    port = free_port()
    install_container(with_passwords(port))
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("resources", "--check", stdout=out)
    masked = f"postgres:****@127.0.0.1:{port}/test"
    for text in (out.getvalue(), str(raised.value)):
        assert masked in text
        assert "password=****" in text
        assert "hunter2" not in text

    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("resources", "--check", "--json", stdout=out)
    errors = [check["error"] for check in json.loads(out.getvalue())["checks"]]
    assert errors == [
        f"ConnectionError: no connection to postgresql://{masked}",
        (
            f"ConnectionError: no connection to host=127.0.0.1 port={port} dbname=test "
            "user=postgres password=****"
        ),
    ]

    built = containers.DynamicContainer()
    built.refused = providers.Resource(refused, f"postgresql://app:hunter2@127.0.0.1:{port}/x")
    install_container(built)
    with pytest.raises(CommandError) as raised:
        call_command("resources", "--check", stdout=io.StringIO())
    assert "app:****@127.0.0.1" in str(raised.value)
    assert "hunter2" not in str(raised.value)


async def text() -> AsyncIterator[str]:
    yield "text"


async def maybe_pool(dsn: str | None) -> AsyncIterator[psycopg_pool.AsyncConnectionPool | None]:
    yield None  # not configured: no pool


async def unannotated():  # type: ignore[no-untyped-def]  # unannotated: what is listed
    async with httpx.AsyncClient() as client:
        yield client


async def anything() -> AsyncIterator[object]:
    yield object()


def redis_client(url: str) -> Iterator[redis.Redis]:
    yield redis.Redis.from_url(url)


class Annotated(containers.DeclarativeContainer):
    text = providers.Resource(text)
    pool = providers.Resource(sync_pool, "postgresql://127.0.0.1:1/none")
    maybe_pool = providers.Resource(maybe_pool, None)
    redis = providers.Resource(redis_client, "redis://127.0.0.1:1/0")
    client = providers.Resource(unannotated)
    anything = providers.Resource(anything)
    declared = providers.Resource(text)


@health_check(Annotated.declared)
def declared_check(value: str) -> bool:
    return value == "text"


def test_resources_lists_the_check_each_resource_gets_or_none(
    install_container: Install,
) -> None:
    """The declared check; else the default for the type the provider is annotated to
    give, or ``none`` for a type with no default; not known for an unannotated or
    ``object`` provider, until ``--check`` opened it and saw."""
    install_container(Annotated())
    out = io.StringIO()
    call_command("resources", "--json", stdout=out)
    listed = {r["name"]: r["health_check"] for r in json.loads(out.getvalue())["resources"]}
    unknown = "default for its type, if any (--check shows it)"
    assert listed == {
        "text": None,
        "pool": "psycopg_pool.ConnectionPool: SELECT 1",
        "maybe_pool": "psycopg_pool.AsyncConnectionPool: SELECT 1",
        "redis": "redis.Redis: PING",
        "client": unknown,
        "anything": unknown,
        "declared": "tests.services.test_health_defaults.declared_check",
    }
    out = io.StringIO()
    call_command("resources", stdout=out)
    rows = {line.split()[1]: line for line in out.getvalue().splitlines() if line[2:3].isdigit()}
    assert rows["text"].endswith("  none")
    assert rows["client"].endswith(f"  {unknown}")
    assert "default for its type" not in rows["text"] + rows["redis"]

    # Opened, every resource shows the check it got.
    built = containers.DynamicContainer()
    built.text = providers.Resource(text)
    built.client = providers.Resource(unannotated)
    built.anything = providers.Resource(anything)
    install_container(built)
    out = io.StringIO()
    call_command("resources", "--check", "--json", stdout=out)
    listed = {r["name"]: r["health_check"] for r in json.loads(out.getvalue())["resources"]}
    assert listed == {"text": None, "client": "httpx.AsyncClient: not closed", "anything": None}
