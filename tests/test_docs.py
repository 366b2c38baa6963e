"""The code in the docs and the README is valid Python (the docs issue runs it too)."""

from __future__ import annotations

import re
from pathlib import Path

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
