"""The container as a graph of resources: what opens, after what, and where.

:class:`ResourceGraph` is built once from a container and never changes: it is
pure and synchronous. It finds every ``providers.Resource`` (named by its
attribute path, ``db`` or ``infra.cache``; a resource nested inside another
provider gets a name from what it provides), which resources each depends on
through every kind of provider, whether it opens in a worker thread (sync) or on
the event loop, the start order, and the cycles that make a resource depend on
itself. The module's functions find providers in a container by path.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from dependency_injector import providers, resources

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

    from dependency_injector import containers

__all__ = [
    "ResourceGraph",
    "ResourceNode",
    "configuration_of",
    "edges",
    "find_cycle",
    "is_async_result",
    "provider_paths",
    "walk",
]


@dataclass(frozen=True, eq=False)
class ResourceNode:
    """One resource of the graph."""

    name: str
    """Its attribute path on the container, e.g. ``db`` or ``infra.cache``."""
    provider: providers.Resource[Any]
    depends_on: tuple[str, ...]
    """The resources it depends on, directly or through other providers."""
    in_thread: bool
    """Whether it opens and closes in a worker thread (sync) rather than on the loop."""


class ResourceGraph:
    """Every resource of ``container``, with its dependencies, in start order."""

    def __init__(self, container: containers.Container) -> None:
        self.container = container
        paths = provider_paths(container.providers)
        self.nodes: dict[str, ResourceNode] = _discover(container, paths)
        """Each resource by name, in declaration order."""
        self.order: tuple[str, ...] = _start_order(self.nodes)
        """The names, every resource after the ones it depends on."""
        self.cycles: dict[str, tuple[str, ...]] = {
            name: path
            for name, node in self.nodes.items()
            if (path := find_cycle(node.provider, paths)) is not None
        }
        """Each resource that depends on itself -> the path back to it, by name."""

    @property
    def stages(self) -> tuple[tuple[str, ...], ...]:
        """The names grouped by how deep they sit: a stage depends only on earlier ones.

        Resources of one stage are independent of each other. (The lifecycle does not
        wait for a whole stage: each resource opens as soon as its own dependencies
        are open.) Resources in a cycle are left out.
        """
        depth: dict[str, int] = {}
        for name in self.order:
            if name in self.cycles:
                continue
            node = self.nodes[name]
            depth[name] = 1 + max((depth.get(d, 0) for d in node.depends_on), default=-1)
        count = max(depth.values(), default=-1) + 1
        return tuple(
            tuple(n for n in self.order if depth.get(n) == level) for level in range(count)
        )

    def dependents(self, names: Iterable[str]) -> dict[str, list[str]]:
        """For each of ``names``, the ones among ``names`` that depend on it."""
        chosen = list(names)
        found: dict[str, list[str]] = {name: [] for name in chosen}
        for name in chosen:
            for dependency in self.nodes[name].depends_on:
                if dependency in found:
                    found[dependency].append(name)
        return found

    def name_of(self, provider: object) -> str | None:
        """The name of the resource whose provider is ``provider``, or ``None``."""
        return next((n.name for n in self.nodes.values() if n.provider is provider), None)


def _discover(
    container: containers.Container, paths: dict[providers.Provider[Any], str]
) -> dict[str, ResourceNode]:
    """Find every Resource provider, named by its attribute path, in declaration order."""
    found: dict[providers.Resource[Any], str] = {
        provider: name
        for provider, name in paths.items()
        if isinstance(provider, providers.Resource)
    }
    # Resources nested inside other providers have no attribute name of their own.
    for provider in container.traverse(types=[providers.Resource]):
        if provider not in found:
            found[provider] = _anonymous_name(provider, found.values())
    discovered: dict[str, ResourceNode] = {}
    for provider, name in found.items():
        reachable = set(provider.traverse(types=[providers.Resource]))
        discovered[name] = ResourceNode(
            name=name,
            provider=provider,
            depends_on=tuple(found[d] for d in found if d is not provider and d in reachable),
            in_thread=_opens_in_thread(provider),
        )
    return discovered


def provider_paths(
    members: dict[str, providers.Provider[Any]],
    prefix: str = "",
    paths: dict[providers.Provider[Any], str] | None = None,
) -> dict[providers.Provider[Any], str]:
    """Each provider of ``members`` (a container's ``.providers``) -> its attribute path.

    Nested containers give dotted paths (``infra.db``); the first path of a
    provider reachable twice wins. ``paths`` is added to and returned.
    """
    paths = {} if paths is None else paths
    for attribute, provider in members.items():
        paths.setdefault(provider, prefix + attribute)
        if isinstance(provider, providers.Container):
            nested: containers.Container = provider.container
            provider_paths(nested.providers, f"{prefix}{attribute}.", paths)
    return paths


def configuration_of(
    option: providers.ConfigurationOption, roots: dict[str, providers.Configuration]
) -> str | None:
    """Which of ``roots`` (path -> configuration) ``option`` reads from, or ``None``.

    Every ``providers.Configuration()`` is named ``config`` unless given a name, so
    the option's name cannot tell two apart. Its copy can: dependency-injector
    copies an option with its configuration, so a copy whose configuration is
    swapped for one holding a marker value gives that value back only for the
    configuration the option belongs to.
    """
    selector = option.get_name().partition(".")[2]
    for path, root in roots.items():
        probe, marker = providers.Configuration(), object()
        probe.from_dict(_nested(selector, marker))
        try:
            found = copy.deepcopy(option, {id(root): probe})()
        except Exception:  # noqa: BLE001, S112 (another configuration's option: undefined here)
            continue
        if found is marker:
            return path
    return None


def _nested(selector: str, value: object) -> dict[str, Any]:
    *parents, leaf = selector.split(".")
    nested: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        nested = {part: nested}
    return nested


def walk(container: object, path: str) -> providers.Provider[Any] | None:
    """The provider at ``path`` (``"db"``, ``"infra.db"``) of a container or its class."""
    node: object = container
    for part in path.split("."):
        try:
            node = getattr(node, part)
        except AttributeError:
            return None
    return node if isinstance(node, providers.Provider) else None


def _anonymous_name(provider: providers.Resource[Any], taken: Iterable[str]) -> str:
    provides = getattr(provider.provides, "__wrapped__", provider.provides)
    base = f"<{getattr(provides, '__qualname__', type(provides).__name__)}>"
    taken = set(taken)
    name, index = base, 2
    while name in taken:
        name, index = f"{base}#{index}", index + 1
    return name


def _opens_in_thread(provider: providers.Resource[Any]) -> bool:
    """Whether opening ``provider`` is sync work, to be done off the event loop.

    Only what is known to be sync goes to a thread: generator functions, sync
    ``resources.Resource`` subclasses and sync context manager classes. Plain
    callables open on the loop, since they may return an awaitable or an async
    context manager (``redis.asyncio.from_url``, ``asyncpg.create_pool``). A
    dependency that is a coroutine needs the loop too.
    """
    provides: Any = provider.provides
    wrapped = getattr(provides, "__wrapped__", None)
    sync = inspect.isgeneratorfunction(wrapped) or (
        isinstance(provides, type)
        and (
            issubclass(provides, resources.Resource)
            or (hasattr(provides, "__enter__") and not hasattr(provides, "__aenter__"))
        )
    )
    dependencies: list[providers.Provider[Any]] = list(provider.traverse())
    return sync and not any(
        isinstance(dependency, providers.Coroutine)
        or inspect.iscoroutinefunction(getattr(dependency, "provides", None))
        for dependency in dependencies
        if not isinstance(dependency, providers.Resource)
    )


def find_cycle(
    start: providers.Provider[Any], names: dict[providers.Provider[Any], str]
) -> tuple[str, ...] | None:
    """A path from ``start`` back to itself through what it depends on, or ``None``.

    Dependencies are followed through every kind of provider (arguments, keyword
    arguments, attributes, what a provider provides). A step is named by the
    provider's attribute path, or else by the argument that holds it:
    ``("a", "dep", "a")`` for ``a = Resource(f, dep=Factory(dict, x=a))``.
    """
    path = [names.get(start, "?")]
    stack = [iter(edges(start))]
    on_path: list[providers.Provider[Any]] = [start]
    done: set[providers.Provider[Any]] = set()
    while stack:
        for label, child in stack[-1]:
            if child is start:
                return (*path, names.get(child, label))
            if child not in done and child not in on_path:
                path.append(names.get(child, label))
                on_path.append(child)
                stack.append(iter(edges(child)))
                break
        else:  # every dependency of the last one explored: it cannot lead back
            stack.pop()
            path.pop()
            done.add(on_path.pop())
    return None


def edges(provider: providers.Provider[Any]) -> list[tuple[str, providers.Provider[Any]]]:
    """``(how provider holds it, dependency)`` for each provider ``provider`` depends on."""
    found: dict[providers.Provider[Any], str] = {}
    held: list[tuple[object, object]] = []
    kind = type(provider)  # not the instance: a Configuration makes an option of any name
    for name in ("kwargs", "attributes"):
        mapping = getattr(provider, name) if hasattr(kind, name) else None
        if isinstance(mapping, dict):
            held += mapping.items()
    arguments = provider.args if hasattr(kind, "args") else None  # type: ignore[attr-defined]
    if isinstance(arguments, tuple):
        held += [(f"argument {index}", value) for index, value in enumerate(arguments, 1)]
    for label, value in held:
        if isinstance(value, providers.Provider):
            found.setdefault(value, str(label))
    for value in provider.related:
        found.setdefault(value, type(value).__name__)
    return [(label, value) for value, label in found.items()]


def _start_order(found: dict[str, ResourceNode]) -> tuple[str, ...]:
    """Resource names with every resource after the ones it depends on.

    Resources in a cycle cannot be ordered: they come last, in declaration order
    (the lifecycle refuses to start them; see :attr:`ResourceGraph.cycles`).
    """
    order: list[str] = []
    placed: set[str] = set()
    remaining = dict(found)
    while remaining:
        ready = [
            name
            for name, resource in remaining.items()
            if all(dependency in placed for dependency in resource.depends_on)
        ] or list(remaining)
        for name in ready:
            order.append(name)
            placed.add(name)
            del remaining[name]
    return tuple(order)


def is_async_result(value: object) -> TypeGuard[Awaitable[Any]]:
    """Whether ``value`` is what a provider returns for a result still to come.

    Exactly dependency-injector's own rule: a coroutine or an ``asyncio`` future.
    Anything else is a value, even one that is awaitable (``redis.asyncio.Redis``
    defines ``__await__``): it is handed over as it is, never awaited or closed.
    """
    # isawaitable first: a cheap "no" for the plain values injection mostly sees.
    return inspect.isawaitable(value) and (asyncio.iscoroutine(value) or asyncio.isfuture(value))
