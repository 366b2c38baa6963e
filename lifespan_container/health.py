"""Health checks of the container's resources, declared next to them.

Every open resource of the container gets a health check: the one declared for
its provider with :func:`health_check`, or else a default for its type, or none.
:func:`run_checks` runs them all concurrently, each bounded by its own timeout,
and reports each resource's status and latency. The health view
(:func:`lifespan_container.views.health`) and ``manage.py resources --check``
use it. The work is done by the engine
(:mod:`lifespan_container.engine.health`); this module is where its public
names are imported from.

Probes share the runs: while a check of a resource runs, every other probe of it
waits for that run's result instead of starting another, and a result may be
reused for a while after (``cache`` seconds, the ``HEALTH_CHECK_CACHE`` setting in
the health view). So any number of concurrent probes costs one check per resource
per cache period. Whatever a check raises, ``SystemExit`` and ``CancelledError``
included, is that resource's ``failing`` result: a check never takes the probe,
nor the server, down.

.. code-block:: python

    from lifespan_container.health import health_check


    class Container(containers.DeclarativeContainer):
        search = providers.Resource(search_client)


    @health_check(Container.search, timeout=2.0)
    async def search_answers(client: SearchClient) -> None:
        await client.ping()  # raising (or returning False) fails the check

Default checks, applied when a resource's value is one of these (detected without
importing the libraries: a type is only looked for in a module already loaded):

=====================================  =====================================
``psycopg_pool.AsyncConnectionPool``   ``SELECT 1`` on a connection from the pool
``psycopg_pool.ConnectionPool``        the same, in a worker thread
``asyncpg.Pool``                       ``SELECT 1`` on a connection from the pool
``redis.asyncio.Redis``                ``PING``
``redis.Redis``                        ``PING``, in a worker thread
``httpx.AsyncClient``, ``httpx.Client``  the client is not closed (no request: the
                                       upstream's health is its own; declare a
                                       check that calls it if you want one)
=====================================  =====================================
"""

from __future__ import annotations

from lifespan_container.engine.health import CheckResult, run_checks
from lifespan_container.engine.health_checks import health_check

__all__ = ["CheckResult", "health_check", "run_checks"]
