"""The code in the docs and the README is valid Python (the docs issue runs it too)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_there_are_pages_with_examples() -> None:
    assert len([page for page in PAGES if BLOCK.search(page.read_text())]) >= 4


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_python_examples_compile(page: Path) -> None:
    for number, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
        compile(match.group(1), f"{page.name} example {number}", "exec")


def _blocks(page: str) -> list[str]:
    return [m.group(1) for m in BLOCK.finditer((ROOT / "docs" / page).read_text())]


@pytest.mark.services
@pytest.mark.asyncio
async def test_the_database_pools_page_opens_a_real_pool_and_redis_client(
    postgres_dsn: str, redis_url: str
) -> None:
    """The psycopg and Redis examples, as written, open and close through the lifecycle."""
    from lifespan_container.lifecycle import ResourceLifecycle  # noqa: PLC0415

    psycopg_example, _, redis_example = _blocks("how-to/database-pools.md")[:3]
    namespace: dict[str, object] = {}
    exec(compile(psycopg_example, "database-pools.md", "exec"), namespace)  # noqa: S102
    exec(compile(redis_example, "database-pools.md", "exec"), namespace)  # noqa: S102
    container = namespace["Container"]()  # type: ignore[operator]
    container.config.database_url.from_value(postgres_dsn)
    container.cache = namespace["providers"].Resource(  # type: ignore[attr-defined]
        namespace["redis_client"], redis_url
    )
    lifecycle = ResourceLifecycle(container)
    assert await lifecycle.start() == []
    async with container.db_pool().connection() as connection:
        cursor = await connection.execute("SELECT current_setting('application_name')")
        assert await cursor.fetchone() == ("myproject",)
    assert await container.cache().ping()
    assert await lifecycle.stop(10) == []


async def _closes_badly() -> AsyncIterator[str]:
    yield "broken"
    raise OSError("socket already closed")


def _operations_container() -> Any:
    from dependency_injector import containers, providers  # noqa: PLC0415

    async def value() -> AsyncIterator[str]:
        yield "db"

    built = containers.DynamicContainer()
    built.db = providers.Resource(value)
    built.broken = providers.Resource(_closes_badly)
    return built


async def _run_lifecycle(connect: Callable[[], None], disconnect: Callable[[], None]) -> None:
    """Open and close a container with the recipe's receivers connected."""
    from lifespan_container._runtime import Runtime  # noqa: PLC0415

    lifecycle = Runtime(_operations_container()).lifecycle
    assert lifecycle is not None
    connect()
    try:
        assert await lifecycle.start() == []
        [failure] = await lifecycle.stop(5)
        assert "socket already closed" in str(failure)
    finally:
        disconnect()


def _disconnect_all(namespace: dict[str, Any]) -> Callable[[], None]:
    from lifespan_container import signals  # noqa: PLC0415

    def disconnect() -> None:
        for signal in (signals.resource_started, signals.resource_stopped, signals.resource_failed):
            for receiver in list(namespace.values()):
                if callable(receiver):
                    signal.disconnect(receiver)

    return disconnect


def _operations_blocks() -> dict[str, str]:
    blocks = _blocks("how-to/operations.md")
    return {
        "health": next(b for b in blocks if "@health_check" in b),
        "logging": next(b for b in blocks if "class JSONFormatter" in b),
        "prometheus": next(b for b in blocks if "prometheus_client" in b),
        "opentelemetry": next(b for b in blocks if "opentelemetry" in b),
    }


@pytest.mark.asyncio
async def test_the_operations_page_prometheus_recipe_counts_real_events() -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    namespace: dict[str, Any] = {}
    exec(compile(_operations_blocks()["prometheus"], "operations.md", "exec"), namespace)  # noqa: S102
    try:
        await _run_lifecycle(namespace["connect"], _disconnect_all(namespace))
        sample = REGISTRY.get_sample_value
        labels = {"resource": "db", "action": "start"}
        assert sample("resource_lifecycle_seconds_count", labels) == 1
        assert sample("resource_lifecycle_seconds_count", {**labels, "action": "stop"}) == 1
        failures = {"resource": "broken", "action": "stop"}
        assert sample("resource_failures_total", failures) == 1
    finally:
        REGISTRY.unregister(namespace["RESOURCE_SECONDS"])
        REGISTRY.unregister(namespace["RESOURCE_FAILURES"])


@pytest.mark.asyncio
async def test_the_operations_page_opentelemetry_recipe_records_spans() -> None:
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )
    from opentelemetry.trace import StatusCode  # noqa: PLC0415

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    namespace: dict[str, Any] = {}
    exec(compile(_operations_blocks()["opentelemetry"], "operations.md", "exec"), namespace)  # noqa: S102
    try:
        await _run_lifecycle(namespace["connect"], _disconnect_all(namespace))
    finally:
        provider.shutdown()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {
        "resource start db",
        "resource start broken",
        "resource stop db",
        "resource stop broken",
    }
    assert spans["resource stop broken"].status.status_code is StatusCode.ERROR
    assert spans["resource stop broken"].events[0].name == "exception"
    assert spans["resource stop db"].status.status_code is StatusCode.UNSET
    db = spans["resource start db"]
    assert db.start_time is not None
    assert db.end_time is not None
    assert db.end_time >= db.start_time
    assert db.attributes == {"resource.name": "db", "resource.action": "start", "outcome": "ok"}


@pytest.mark.asyncio
async def test_the_operations_page_json_formatter_and_health_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from lifespan_container.health import declared_check  # noqa: PLC0415

    blocks = _operations_blocks()
    namespace: dict[str, Any] = {}
    exec(compile(blocks["logging"], "operations.md", "exec"), namespace)  # noqa: S102
    assert namespace["LOGGING"]["formatters"]["json"]["()"] == "myproject.logging.JSONFormatter"
    caplog.set_level(logging.INFO, "lifespan_container")
    await _run_lifecycle(lambda: None, lambda: None)
    formatter = namespace["JSONFormatter"]()
    lines = [
        json.loads(formatter.format(r))
        for r in caplog.records
        if r.name == "lifespan_container.resources"
    ]
    assert lines[0]["logger"] == "lifespan_container.resources"
    assert {(line["resource"], line["action"], line["outcome"]) for line in lines} == {
        ("db", "start", "ok"),
        ("broken", "start", "ok"),
        ("db", "stop", "ok"),
        ("broken", "stop", "failed"),
    }
    failed = next(line for line in lines if line["outcome"] == "failed")
    assert "OSError: socket already closed" in failed["traceback"]
    assert all(isinstance(line["duration"], float) for line in lines)

    health: dict[str, Any] = {"__name__": "myproject.containers"}
    exec(compile(blocks["health"], "operations.md", "exec"), health)  # noqa: S102
    container = health["Container"]()
    assert declared_check(container, "search") == "myproject.containers.search_answers"
