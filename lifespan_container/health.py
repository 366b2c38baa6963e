"""Health checks of the container's resources, declared next to them.

Every open resource of the container gets a health check: the one declared for
its provider with :func:`health_check`, or else a default for its type, or none.
:func:`run_checks` runs them all concurrently, each bounded by its own timeout,
and reports each resource's status and latency. The health view
(:func:`lifespan_container.views.health`) and ``manage.py resources --check``
use it. This module imports nothing from Django.

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

import asyncio
import contextlib
import contextvars
import inspect
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from asgiref.sync import iscoroutinefunction
from dependency_injector import providers

from lifespan_container._phase import positive_number, qualified_name
from lifespan_container.exceptions import ResourcesNotStartedError, WrongEventLoopError
from lifespan_container.lifecycle import walk

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dependency_injector import containers

    from lifespan_container.lifecycle import ResourceLifecycle

__all__ = ["CheckResult", "health_check", "run_checks"]

F = TypeVar("F", bound="Callable[..., Any]")

Status = Literal["ok", "failing", "timeout", "not open"]


@dataclass(frozen=True)
class Check:
    """A health check: ``function`` takes the open resource; raising or ``False`` fails."""

    function: Callable[[Any], Any]
    label: str
    """What the check does, as reports show it (``module.qualname`` for your own)."""
    timeout: float | None = None
    """Seconds it may take; ``None``: the ``HEALTH_CHECK_TIMEOUT`` setting."""


@dataclass(frozen=True)
class CheckResult:
    """How one resource did in its health check."""

    name: str
    """The resource's attribute path on the container."""
    status: Status
    """``ok``; ``failing`` (the check raised or returned ``False``); ``timeout`` (it
    did not finish in time); ``not open`` (the resources are not open)."""
    check: str | None
    """What was checked (``None``: the resource is open and has no check)."""
    latency: float | None = None
    """Seconds the check took (``None`` when no check ran)."""
    error: str | None = None
    """What went wrong, e.g. ``OperationalError: connection refused``."""

    @property
    def ok(self) -> bool:
        """Whether the resource is healthy."""
        return self.status == "ok"


_declared: dict[providers.Provider[Any], Check] = {}
"""Declared checks, by the provider they were declared for (classes' providers live
as long as the process)."""


def health_check(
    provider: providers.Provider[Any], *, timeout: float | None = None
) -> Callable[[F], F]:
    """Declare the decorated function as the health check of the resource ``provider``.

    The function gets the open resource. It may be async (awaited in the serving
    event loop) or sync (run in a thread of its own: one that hangs is left behind
    when its timeout passes, and reported as ``timeout`` until it ends). It fails
    the check by raising or by returning ``False``. ``timeout`` (seconds)
    overrides ``HEALTH_CHECK_TIMEOUT`` for this check. Declaring a check replaces
    the default one for the resource's type; declare it for the container class's
    provider (``Container.db``), next to the container. A subclass of the
    container shares its providers (``Prod.db is Base.db``), so it shares their
    checks too.
    """
    if not isinstance(provider, providers.Resource):
        msg = (
            f"health_check() takes a Resource provider of a container, such as "
            f"Container.db, not {provider!r}: only resources are opened and checked."
        )
        raise TypeError(msg)
    if timeout is not None and not positive_number(timeout):
        msg = f"health_check(timeout=...) must be a positive number of seconds, not {timeout!r}."
        raise ValueError(msg)

    def declare(function: F) -> F:
        _declared[provider] = Check(function, qualified_name(function), timeout)
        return function

    return declare


def check_for(container: containers.Container, name: str, value: object) -> Check | None:
    """The check of resource ``name``: the declared one, or the default for ``value``."""
    return _declared_for(container, name) or default_check(value)


def declared_check(container: containers.Container, name: str) -> str | None:
    """The label of the check declared for resource ``name``, if one was."""
    declared = _declared_for(container, name)
    return declared.label if declared else None


def _declared_for(container: containers.Container, name: str) -> Check | None:
    return next(
        (_declared[p] for p in _providers_at(container, name) if p in _declared),
        None,
    )


def _providers_at(container: object, path: str) -> Iterator[providers.Provider[Any]]:
    """The providers that may declare resource ``path``.

    The container's own, and its declarative class's, at each level of nesting.
    """
    parts = path.split(".")
    node: object = container
    for index in range(len(parts)):
        rest = ".".join(parts[index:])
        for holder in (node, getattr(node, "declarative_parent", None)):
            found = walk(holder, rest) if holder is not None else None
            if found is not None:
                yield found
        nested = getattr(node, parts[index], None)
        if not isinstance(nested, providers.Container):
            return
        node = nested.container


# -- defaults ----------------------------------------------------------------------------


async def _psycopg_async(pool: Any) -> None:
    async with pool.connection() as connection:
        await connection.execute("SELECT 1")


def _psycopg_sync(pool: Any) -> None:
    with pool.connection() as connection:
        connection.execute("SELECT 1")


async def _asyncpg(pool: Any) -> None:
    async with pool.acquire() as connection:
        await connection.fetchval("SELECT 1")


async def _redis_async(client: Any) -> object:
    return await client.ping()


def _redis_sync(client: Any) -> object:
    return client.ping()


async def _client_open(client: Any) -> bool:  # no I/O: no thread needed
    return not client.is_closed


_DEFAULTS: tuple[tuple[str, str, Callable[[Any], Any], str], ...] = (
    ("psycopg_pool", "AsyncConnectionPool", _psycopg_async, "SELECT 1"),
    ("psycopg_pool", "ConnectionPool", _psycopg_sync, "SELECT 1"),
    ("asyncpg", "Pool", _asyncpg, "SELECT 1"),
    ("redis.asyncio", "Redis", _redis_async, "PING"),
    ("redis", "Redis", _redis_sync, "PING"),
    ("httpx", "AsyncClient", _client_open, "not closed"),
    ("httpx", "Client", _client_open, "not closed"),
)


def default_check(value: object) -> Check | None:
    """The default check for a resource value of a known type, or ``None``.

    A type is looked up only in a module already imported (``sys.modules``): a
    value of that type can only exist if its module was imported.
    """
    for module, attribute, function, what in _DEFAULTS:
        kind = getattr(sys.modules.get(module), attribute, None)
        if isinstance(kind, type) and isinstance(value, kind):
            return Check(function, f"{module}.{attribute}: {what}")
    return None


# -- running -----------------------------------------------------------------------------


async def run_checks(lifecycle: ResourceLifecycle, timeout: float) -> list[CheckResult]:
    """Check every resource of ``lifecycle`` concurrently; results in start order.

    Each check is bounded by its own timeout (``timeout`` seconds unless declared
    otherwise) and never raises: what it raised is in its result. A resource a
    test overrides is checked as the value the override gives.
    """
    return list(
        await asyncio.gather(*(_check(lifecycle, name, timeout) for name in lifecycle.names))
    )


async def _check(lifecycle: ResourceLifecycle, name: str, default_timeout: float) -> CheckResult:
    try:
        value = lifecycle.current(name)
    except ResourcesNotStartedError:
        return CheckResult(name, "not open", None, error="the resources are not open")
    except WrongEventLoopError as exc:
        return CheckResult(name, "failing", None, error=str(exc))
    if inspect.isawaitable(value):  # an override with an async provider
        try:
            value = await asyncio.wait_for(value, default_timeout)
        except TimeoutError:
            return CheckResult(name, "timeout", None, error="the override did not give a value")
    check = check_for(lifecycle.container, name, value)
    if check is None:
        return CheckResult(name, "ok", None)
    seconds = check.timeout or default_timeout
    started = time.perf_counter()
    status, error = await _run(check.function, value, seconds)
    return CheckResult(name, status, check.label, time.perf_counter() - started, error)


async def _run(
    function: Callable[[Any], Any], value: object, seconds: float
) -> tuple[Status, str | None]:
    """Run one check within ``seconds``: its status and what went wrong."""
    if (id(function), id(value)) in _in_threads:
        return "timeout", "its previous run has not finished yet"
    limit = asyncio.timeout(seconds)
    try:
        async with limit:
            passed = await _call(function, value)
    except TimeoutError as exc:
        if limit.expired():
            return "timeout", f"did not finish within {seconds:g} s"
        return "failing", _describe(exc)
    except Exception as exc:  # noqa: BLE001 (any error fails the check; it is reported)
        return "failing", _describe(exc)
    if passed is False:
        return "failing", "the check returned False"
    return "ok", None


_in_threads: set[tuple[int, int]] = set()
"""(check, resource value) of the sync checks whose thread is still running."""


async def _call(function: Callable[[Any], Any], value: object) -> object:
    if iscoroutinefunction(function):
        return await function(value)
    result = await _in_daemon_thread(function, value)
    return await result if inspect.isawaitable(result) else result


async def _in_daemon_thread(function: Callable[[Any], Any], value: object) -> object:
    """Run a sync check in a thread of its own, which a timeout leaves behind.

    A daemon thread, not the loop's default executor: a check that hangs must not
    take a worker that DNS lookups and Django need, nor keep the process alive at
    exit. At most one thread per check and resource runs (see :func:`_run`).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[object] = loop.create_future()
    key = (id(function), id(value))
    context = contextvars.copy_context()

    def settle(result: object, error: BaseException | None) -> None:
        if done.done():
            return  # the check timed out before it finished
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def target() -> None:
        try:
            result, error = context.run(function, value), None
        except BaseException as exc:  # noqa: BLE001 (handed to the loop)
            result, error = None, exc
        finally:
            _in_threads.discard(key)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    _in_threads.add(key)
    threading.Thread(target=target, name="lifespan-health-check", daemon=True).start()
    return await done


def _describe(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
