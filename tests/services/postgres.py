"""What the tests ask the local PostgreSQL about its connections."""

from __future__ import annotations

import psycopg


def backends(dsn: str, name: str) -> int:
    """How many backends PostgreSQL has for connections tagged ``name``."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])
