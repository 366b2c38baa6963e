"""A project for gunicorn's graceful timeout: a real PostgreSQL pool and a slow query.

Served by ``tests/servers/test_worker_drain.py``. Environment variables:

- ``LC_DRAIN_DSN``: the PostgreSQL the pool connects to;
- ``LC_DRAIN_APP_NAME``: the pool's ``application_name``, so that the test can count
  its backends in ``pg_stat_activity``;
- ``LC_SHUTDOWN_TIMEOUT``: ``LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"]`` (1 s by default).
"""
