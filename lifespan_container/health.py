"""Health checks of the container's resources, declared next to them.

Every open resource of the container gets a health check: the one declared for
its provider with :func:`health_check`, or else a default for its type, or none.
:func:`run_checks` runs them all concurrently, each bounded by its own timeout,
and reports each resource's status and latency. The health view
(:func:`lifespan_container.views.health`) and ``manage.py resources --check``
use it. This module imports nothing from Django.

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

import asyncio
import collections.abc
import contextlib
import contextvars
import sys
import threading
import types
import typing
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, TypeVar

from asgiref.sync import iscoroutinefunction
from dependency_injector import providers

from lifespan_container._phase import positive_number, qualified_name
from lifespan_container._redact import describe_error, redact
from lifespan_container.exceptions import ResourcesNotStartedError, WrongEventLoopError
from lifespan_container.lifecycle import is_async_result, walk

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
    """Seconds the check took (``None`` when no check ran); for a run that is still
    going past its timeout, how long it has been running. Probes that shared a run,
    or reused its result, report that run's latency."""
    error: str | None = None
    """What went wrong, e.g. ``OperationalError: connection refused`` (credentials
    masked)."""

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
    event loop, and cancelled when its timeout passes) or sync (run in a thread of
    its own: one that hangs is left behind when its timeout passes, and reported as
    ``timeout``, without being started again, until it ends). It fails the check by
    raising (anything, ``SystemExit`` included) or by returning ``False``.
    ``timeout`` (seconds) overrides ``HEALTH_CHECK_TIMEOUT`` for this check.
    Declaring a check replaces the default one for the resource's type; declare it
    for the container class's provider (``Container.db``), next to the container.
    A subclass of the container shares its providers (``Prod.db is Base.db``), so
    it shares their checks too.
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


# -- what a resource will get, before it opens ------------------------------------------


class Planned(NamedTuple):
    """The check a resource will get, as far as can be told before it opens."""

    known: bool
    """Whether it can be told: its check is declared, or its provider's return type
    is annotated precisely enough."""
    label: str | None
    """The check's label; ``None`` when it gets no check (or when it is not known)."""


def planned_check(
    container: containers.Container, name: str, provider: providers.Provider[Any]
) -> Planned:
    """The check resource ``name`` (opened by ``provider``) will get, without opening it.

    The declared check; else the default for the type its provider's function (or
    ``resources.Resource`` class) is annotated to give, or none for a type that has
    no default. Not known for an unannotated provider, or one annotated with a type
    broad enough (``object``, ``Any``) to be one that has a default.
    """
    declared = _declared_for(container, name)
    if declared is not None:
        return Planned(known=True, label=declared.label)
    kinds = _given_types(getattr(provider, "provides", None))
    if kinds is None:
        return Planned(known=False, label=None)
    labels: set[str] = set()
    for kind in kinds:
        if kind is type(None):
            continue  # a resource that gives None (not configured) is open without a check
        label = _default_label_for_type(kind)
        if label == _UNKNOWN:
            return Planned(known=False, label=None)
        if label is not None:
            labels.add(label)
    if len(labels) > 1:
        return Planned(known=False, label=None)
    return Planned(known=True, label=next(iter(labels), None))


_UNKNOWN: Final = "?"

_YIELDING: Final = frozenset(
    {
        collections.abc.Iterator,
        collections.abc.Iterable,
        collections.abc.Generator,
        collections.abc.AsyncIterator,
        collections.abc.AsyncIterable,
        collections.abc.AsyncGenerator,
    }
)


def _given_types(provides: object) -> list[object] | None:
    """The types a resource's initializer is annotated to give; ``None`` if unknown."""
    returned = _return_annotation(provides)
    if returned is None:
        return None
    if typing.get_origin(returned) in _YIELDING:  # a generator: what it yields
        arguments = typing.get_args(returned)
        if not arguments:
            return None
        returned = arguments[0]
    if typing.get_origin(returned) in {typing.Union, types.UnionType}:
        return list(typing.get_args(returned))
    return [returned]


def _return_annotation(provides: object) -> object | None:
    if isinstance(provides, type):
        from dependency_injector import resources  # noqa: PLC0415

        if not issubclass(provides, resources.Resource | resources.AsyncResource):
            return provides  # a class used as the initializer gives its instances
        provides = provides.init
    if not callable(provides):
        return None
    try:
        returned: object = typing.get_type_hints(provides).get("return")
    except Exception:  # noqa: BLE001 (names imported under TYPE_CHECKING: not known)
        return None
    return returned


def _default_label_for_type(kind: object) -> str | None:
    """The label of the default check a value of type ``kind`` gets.

    ``None`` when it gets none; ``_UNKNOWN`` when ``kind`` is too broad to tell.
    """
    kind = typing.get_origin(kind) or kind  # AsyncConnectionPool[...] -> the class
    if not isinstance(kind, type) or kind is object:
        return _UNKNOWN
    broader = False
    for module, attribute, _, what in _DEFAULTS:
        known = getattr(sys.modules.get(module), attribute, None)
        if not isinstance(known, type):
            continue
        if issubclass(kind, known):
            return f"{module}.{attribute}: {what}"
        broader = broader or issubclass(known, kind)
    return _UNKNOWN if broader else None


# -- running -----------------------------------------------------------------------------


async def run_checks(
    lifecycle: ResourceLifecycle, timeout: float, *, cache: float = 0.0
) -> list[CheckResult]:
    """Check every resource of ``lifecycle`` concurrently; results in start order.

    Each check is bounded by its own timeout (``timeout`` seconds unless declared
    otherwise) and never raises: what it raised, ``BaseException`` included, is in
    its result. Only the cancellation of the caller itself propagates.

    A run of a check is shared: a probe that finds one running waits for its result
    (within the run's timeout, or its own if shorter) instead of starting another;
    a result is reused for ``cache`` seconds after its run ended in time (``0``: not
    reused). A sync check left running past its timeout is reported as ``timeout``
    and not started again until it ends. Runs are shared and cached per lifecycle,
    per resource value: a new value (a new lifespan, an override) is checked
    afresh. A resource a test overrides is checked as the value the override gives.
    """
    monitor = _monitor_for(lifecycle)
    return list(
        await asyncio.gather(
            *(_check(lifecycle, monitor, name, timeout, cache) for name in lifecycle.names)
        )
    )


def _being_cancelled() -> bool:
    """Whether the current task is being cancelled.

    As opposed to code raising ``CancelledError`` of its own accord.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _check(
    lifecycle: ResourceLifecycle,
    monitor: _Monitor,
    name: str,
    default_timeout: float,
    cache: float,
) -> CheckResult:
    """Check resource ``name``; contains whatever goes wrong, except being cancelled."""
    try:
        return await _check_resource(lifecycle, monitor, name, default_timeout, cache)
    except asyncio.CancelledError as exc:
        if _being_cancelled():
            raise  # the probe itself is cancelled: the client left, the server stops
        return CheckResult(name, "failing", None, error=_describe(exc))
    except BaseException as exc:  # noqa: BLE001 (an override or a check raising anything)
        return CheckResult(name, "failing", None, error=_describe(exc))


async def _check_resource(
    lifecycle: ResourceLifecycle,
    monitor: _Monitor,
    name: str,
    default_timeout: float,
    cache: float,
) -> CheckResult:
    try:
        value = lifecycle.current(name)
    except ResourcesNotStartedError:
        return CheckResult(name, "not open", None, error="the resources are not open")
    except WrongEventLoopError as exc:
        return CheckResult(name, "failing", None, error=redact(str(exc)))
    if lifecycle.overridden(name) and is_async_result(value):  # an async override's result
        limit = asyncio.timeout(default_timeout)
        try:
            async with limit:  # awaited here, not in a task: what it raises stays in _check
                value = await value
        except TimeoutError:
            if not limit.expired():
                raise
            return CheckResult(name, "timeout", None, error="the override did not give a value")
    check = check_for(lifecycle.container, name, value)
    if check is None:
        return CheckResult(name, "ok", None)
    seconds = check.timeout or default_timeout
    run = monitor.run(check, value, seconds, cache)
    outcome = await run.result(seconds)
    return CheckResult(name, outcome.status, check.label, outcome.latency, outcome.error)


class _Outcome(NamedTuple):
    status: Status
    error: str | None
    latency: float


_monitors: weakref.WeakKeyDictionary[ResourceLifecycle, _Monitor] = weakref.WeakKeyDictionary()
"""Each lifecycle's runs, for as long as the lifecycle lives."""


def _monitor_for(lifecycle: ResourceLifecycle) -> _Monitor:
    monitor = _monitors.get(lifecycle)
    if monitor is None:
        monitor = _monitors[lifecycle] = _Monitor()
    return monitor


class _Monitor:
    """The runs of one lifecycle's checks: shared while they run, reused for a while.

    Keyed by (check, id of the resource value), and only ever matched to the very
    same value object (a run holds it, so its id cannot be reused meanwhile) in the
    same event loop.
    """

    def __init__(self) -> None:
        self._runs: dict[tuple[Callable[[Any], Any], int], _Run] = {}

    def run(self, check: Check, value: object, seconds: float, cache: float) -> _Run:
        """The run whose result a probe of ``check`` on ``value`` gets.

        The one going on, or one that ended within the last ``cache`` seconds, or
        a new one.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        for key, old in list(self._runs.items()):
            if not old.busy and not old.fresh(now, cache):
                self._runs.pop(key, None)
        key = (check.function, id(value))
        run = self._runs.get(key)
        if run is not None and run.value is value and run.loop is loop:
            return run  # busy (running, or hung past its timeout) or fresh
        run = _Run(check, value, seconds, loop, self._forget)
        self._runs[key] = run
        return run

    def _forget(self, run: _Run) -> None:
        """Drop ``run`` once its code ended, unless its result may be reused."""
        key = (run.function, id(run.value))
        if run.ended_at is None and self._runs.get(key) is run:
            self._runs.pop(key, None)


class _Run:
    """One run of a check on one resource value, shared by every probe waiting for it.

    Its outcome is settled when the check ends, or at its deadline (``timeout``;
    an async check is cancelled then). It is busy until the check's code has
    actually ended: a sync check's thread, or an async check that ignores its
    cancellation, may run past the deadline.
    """

    def __init__(
        self,
        check: Check,
        value: object,
        seconds: float,
        loop: asyncio.AbstractEventLoop,
        forget: Callable[[_Run], None],
    ) -> None:
        self.function = check.function
        self.value = value
        self.seconds = seconds
        self.loop = loop
        self.started = loop.time()
        self.deadline = self.started + seconds
        self.outcome: asyncio.Future[_Outcome] = loop.create_future()
        self.ended_at: float | None = None
        """When the check ended within its time (its outcome may then be reused)."""
        self.waiters = 0
        """Probes waiting for the outcome now."""
        self._forget = forget
        self._parts = 1  # the task; and, for a sync check, its thread
        self._task = loop.create_task(self._execute(), name=f"health check {check.label}")
        self._expiry = loop.call_at(self.deadline, self._expire)

    @property
    def busy(self) -> bool:
        """Whether the check's code is still running (possibly past its deadline)."""
        return self._parts > 0

    def fresh(self, now: float, cache: float) -> bool:
        """Whether the outcome may be reused at ``now`` by a probe allowing ``cache`` s."""
        return self.ended_at is not None and now - self.ended_at < cache

    async def result(self, seconds: float) -> _Outcome:
        """The outcome, waiting for it at most until the run's deadline or ``seconds``."""
        now = self.loop.time()
        if self.outcome.done():
            outcome = self.outcome.result()
            if outcome.status == "timeout" and self.busy:
                age = now - self.started
                error = (
                    f"did not finish within {self.seconds:g} s; still running after "
                    f"{age:.1f} s, so not started again until it ends"
                )
                return _Outcome("timeout", error, age)
            return outcome
        own_deadline = now + seconds
        self.waiters += 1
        try:
            if own_deadline >= self.deadline:  # the run's deadline settles the outcome
                return await asyncio.shield(self.outcome)
            try:
                async with asyncio.timeout_at(own_deadline):
                    return await asyncio.shield(self.outcome)
            except TimeoutError:
                elapsed = self.loop.time() - self.started
                return _Outcome("timeout", f"did not finish within {seconds:g} s", elapsed)
        finally:
            self.waiters -= 1

    def _settle(self, status: Status, error: str | None, latency: float) -> bool:
        if self.outcome.done():
            return False
        self.outcome.set_result(_Outcome(status, error, latency))
        return True

    def _expire(self) -> None:
        elapsed = max(self.loop.time() - self.started, self.seconds)
        if self._settle("timeout", f"did not finish within {self.seconds:g} s", elapsed):
            self._task.cancel()  # an async check stops; a thread is left to end on its own

    def _part_ended(self) -> None:
        self._parts -= 1
        if self._parts == 0:
            self._forget(self)

    async def _execute(self) -> None:
        try:
            status, error = await self._call()
            ended = self.loop.time()
            if self._settle(status, error, ended - self.started):
                self.ended_at = ended  # in time: the outcome may be reused
        except asyncio.CancelledError:  # by _expire (settled), or the loop is closing
            self._settle("failing", "the check was cancelled", self.loop.time() - self.started)
            raise
        finally:
            self._expiry.cancel()
            self._part_ended()

    async def _call(self) -> tuple[Status, str | None]:
        """Run the check: its status and what went wrong. Raises only when cancelled."""
        try:
            if iscoroutinefunction(self.function):
                passed = await self.function(self.value)
            else:
                passed, error = await self._in_thread()
                if error is not None:
                    return "failing", error
                if is_async_result(passed):
                    passed = await passed
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                raise
            return "failing", _describe(exc)  # the check's own, not a cancellation
        except BaseException as exc:  # noqa: BLE001 (SystemExit, KeyboardInterrupt... fail it)
            return "failing", _describe(exc)
        if passed is False:
            return "failing", "the check returned False"
        return "ok", None

    async def _in_thread(self) -> tuple[object, str | None]:
        """Run the sync check in a thread of its own, which a timeout leaves behind.

        A daemon thread, not the loop's default executor: a check that hangs must not
        take a worker that DNS lookups and Django need, nor keep the process alive at
        exit. What the check raises, ``SystemExit`` included, is caught in the thread
        and handed over as text: an exception such as ``SystemExit`` set on a future
        would be re-raised out of the event loop, stopping the server.
        """
        done: asyncio.Future[tuple[object, str | None]] = self.loop.create_future()
        context = contextvars.copy_context()

        def ended(outcome: tuple[object, str | None]) -> None:
            if not done.done():  # not cancelled by the deadline
                done.set_result(outcome)
            self._part_ended()

        def target() -> None:
            try:
                outcome: tuple[object, str | None] = (context.run(self.function, self.value), None)
            except BaseException as exc:  # noqa: BLE001 (reported, never re-raised)
                outcome = (None, _describe(exc))
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self.loop.call_soon_threadsafe(ended, outcome)

        thread = threading.Thread(target=target, name="lifespan-health-check", daemon=True)
        self._parts += 1
        try:
            thread.start()
        except BaseException:
            self._parts -= 1
            raise
        return await done


def _describe(error: BaseException) -> str:
    """``Type: message`` with credentials masked; never raises (a ``__str__`` may)."""
    try:
        return describe_error(error)
    except Exception:  # noqa: BLE001
        return type(error).__name__
