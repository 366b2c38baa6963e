"""What each resource's health check is: declared next to the container, or a default.

Declarations are kept in a :class:`HealthChecks` registry (the process has one,
:data:`DECLARED`); defaults are found by the type of the open value, without
importing the client libraries: a type is only looked for in a module already
loaded. Nothing here opens a resource or runs a check.
"""

from __future__ import annotations

import collections.abc
import sys
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

from dependency_injector import providers

from lifespan_container.engine.graph import walk
from lifespan_container.engine.limits import positive_number
from lifespan_container.engine.steps import qualified_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dependency_injector import containers

__all__ = ["DECLARED", "Check", "HealthChecks", "Planned", "default_check", "health_check"]

F = TypeVar("F", bound="Callable[..., Any]")


@dataclass(frozen=True)
class Check:
    """A health check: ``function`` takes the open resource; raising or ``False`` fails."""

    function: Callable[[Any], Any]
    label: str
    """What the check does, as reports show it (``module.qualname`` for your own)."""
    timeout: float | None = None
    """Seconds it may take; ``None``: the ``HEALTH_CHECK_TIMEOUT`` setting."""


class HealthChecks:
    """Declared checks, by the provider they were declared for.

    A container class's providers live as long as the class, so a check declared
    for one lives as long too, unless :meth:`remove` or :meth:`clear` drops it.
    """

    def __init__(self) -> None:
        self._checks: dict[providers.Provider[Any], Check] = {}

    def declare(self, provider: providers.Provider[Any], check: Check) -> None:
        """Make ``check`` the check of ``provider``'s resource (replacing any other)."""
        self._checks[provider] = check

    def remove(self, provider: providers.Provider[Any]) -> None:
        """Forget the check declared for ``provider``, if any."""
        self._checks.pop(provider, None)

    def clear(self) -> None:
        """Forget every declared check."""
        self._checks.clear()

    def for_resource(self, container: containers.Container, name: str) -> Check | None:
        """The check declared for resource ``name`` of ``container``, if one was."""
        return next(
            (self._checks[p] for p in _providers_at(container, name) if p in self._checks),
            None,
        )

    def check_for(self, container: containers.Container, name: str, value: object) -> Check | None:
        """The check of resource ``name``: the declared one, or the default for ``value``."""
        return self.for_resource(container, name) or default_check(value)


DECLARED: Final = HealthChecks()
"""The checks declared with :func:`health_check`."""


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
        DECLARED.declare(provider, Check(function, qualified_name(function), timeout))
        return function

    return declare


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
    declared = DECLARED.for_resource(container, name)
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
