"""The resource graph: names, dependencies, thread or loop, order, stages and cycles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Self

import pytest
from dependency_injector import containers, providers, resources

from lifespan_container.engine.graph import (
    ResourceGraph,
    configuration_of,
    find_cycle,
    is_async_result,
    provider_paths,
    walk,
)


async def async_gen(*args: object, **kwargs: object) -> AsyncIterator[str]:
    yield "async"


def sync_gen(*args: object, **kwargs: object) -> Iterator[str]:
    yield "sync"


class SyncResource(resources.Resource[str]):
    def init(self, *args: object, **kwargs: object) -> str:
        return "sync"


class AsyncResource(resources.AsyncResource[str]):
    async def init(self, *args: object, **kwargs: object) -> str:
        return "async"


class Manager:
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


def plain(*args: object) -> str:
    return "plain"


async def coroutine() -> str:
    return "coroutine"


def build(**members: providers.Provider[Any]) -> containers.DynamicContainer:
    built = containers.DynamicContainer()
    for name, provider in members.items():
        setattr(built, name, provider)
    return built


def test_only_known_sync_resources_open_in_a_thread() -> None:
    """Generator functions, Resource subclasses and context manager classes go to a thread.

    Async generators, AsyncResource subclasses and plain callables (which may return
    an awaitable) open on the loop, and so does a sync resource that needs a coroutine.
    """
    built = build(
        async_gen=providers.Resource(async_gen),
        sync_gen=providers.Resource(sync_gen),
        sync_resource=providers.Resource(SyncResource),
        async_resource=providers.Resource(AsyncResource),
        manager=providers.Resource(Manager),
        plain=providers.Resource(plain),
        needs_coroutine=providers.Resource(sync_gen, providers.Coroutine(coroutine)),
    )
    in_thread = {name: node.in_thread for name, node in ResourceGraph(built).nodes.items()}
    assert in_thread == {
        "async_gen": False,
        "sync_gen": True,
        "sync_resource": True,
        "async_resource": False,
        "manager": True,
        "plain": False,
        "needs_coroutine": False,
    }


def test_dependencies_are_found_through_other_providers_and_ordered_first() -> None:
    """A resource depends on the ones reachable through any provider, and comes after them."""
    built = build()
    built.service = providers.Resource(async_gen)  # declared first, opens last
    built.config = providers.Resource(async_gen)
    built.db = providers.Resource(sync_gen, built.config)
    built.repo = providers.Factory(dict, db=built.db)
    built.service.add_args(built.repo)
    graph = ResourceGraph(built)

    assert list(graph.nodes) == ["service", "config", "db"]
    assert graph.nodes["service"].depends_on == ("config", "db")
    assert graph.nodes["db"].depends_on == ("config",)
    assert graph.order == ("config", "db", "service")
    assert graph.stages == (("config",), ("db",), ("service",))
    assert graph.dependents(["config", "db", "service"]) == {
        "config": ["db", "service"],
        "db": ["service"],
        "service": [],
    }
    assert graph.dependents(["config", "service"]) == {"config": ["service"], "service": []}
    assert graph.cycles == {}


def test_independent_resources_share_a_stage() -> None:
    """Resources that do not depend on each other are in the same stage."""
    built = build(a=providers.Resource(async_gen), b=providers.Resource(sync_gen))
    built.c = providers.Resource(async_gen, built.a, built.b)
    assert ResourceGraph(built).stages == (("a", "b"), ("c",))


def test_nested_containers_give_dotted_names() -> None:
    """A resource of a nested container is named by its attribute path."""

    class Infra(containers.DeclarativeContainer):
        cache = providers.Resource(async_gen)

    class Main(containers.DeclarativeContainer):
        infra = providers.Container(Infra)
        service = providers.Resource(async_gen, infra.cache)

    main = Main()
    graph = ResourceGraph(main)
    assert graph.order == ("infra.cache", "service")
    assert graph.nodes["service"].depends_on == ("infra.cache",)
    assert graph.name_of(main.infra.cache) == "infra.cache"
    assert graph.name_of(main.service) == "service"
    assert graph.name_of(providers.Object(1)) is None
    paths = provider_paths(main.providers)
    assert paths[main.infra.cache] == "infra.cache"
    assert paths[main.infra] == "infra"


def test_a_resource_without_an_attribute_is_named_by_what_it_provides() -> None:
    """A resource nested in another provider gets ``<qualname>``, made unique with ``#2``."""
    nested = providers.Resource(sync_gen)
    built = build(
        one=providers.Factory(dict, x=nested),
        two=providers.Factory(dict, x=providers.Resource(sync_gen)),
    )
    built.user = providers.Resource(async_gen, built.one)
    graph = ResourceGraph(built)
    assert set(graph.nodes) == {"<sync_gen>", "<sync_gen>#2", "user"}
    assert graph.nodes["user"].depends_on == (graph.name_of(nested),)
    assert graph.nodes["<sync_gen>"].in_thread


def test_a_resource_depending_on_itself_is_a_cycle_named_by_its_path() -> None:
    """find_cycle names the path back, by attribute or by the argument that holds it."""
    factory: providers.Factory[dict[str, Any]] = providers.Factory(dict)
    built = build(a=providers.Resource(async_gen, dep=factory), b=providers.Resource(async_gen))
    factory.add_kwargs(x=built.a)
    graph = ResourceGraph(built)
    assert graph.cycles == {"a": ("a", "dep", "a")}
    assert find_cycle(built.b, provider_paths(built.providers)) is None
    assert graph.stages == (("b",),)


def test_resources_in_a_mutual_cycle_come_last_and_are_left_out_of_the_stages() -> None:
    """Two resources depending on each other cannot be ordered: they come last."""
    to_b: providers.Factory[dict[str, Any]] = providers.Factory(dict)
    to_a: providers.Factory[dict[str, Any]] = providers.Factory(dict)
    built = build(
        a=providers.Resource(async_gen, to_b),
        free=providers.Resource(async_gen),
        b=providers.Resource(async_gen, to_a),
    )
    to_b.add_kwargs(x=built.b)
    to_a.add_kwargs(y=built.a)
    graph = ResourceGraph(built)
    assert graph.order == ("free", "a", "b")
    assert set(graph.cycles) == {"a", "b"}
    assert graph.cycles["a"][0] == graph.cycles["a"][-1] == "a"
    assert "b" in graph.cycles["a"]
    assert graph.stages == (("free",),)


def test_walk_finds_a_provider_by_path_or_gives_none() -> None:
    """walk follows dotted paths on a container or its class; anything else is None."""

    class Infra(containers.DeclarativeContainer):
        cache = providers.Resource(async_gen)
        number = 3

    class Main(containers.DeclarativeContainer):
        infra = providers.Container(Infra)

    main = Main()
    assert walk(main, "infra.cache") is main.infra.cache
    assert walk(Main, "infra.cache") is Main.infra.cache
    assert walk(main, "infra.missing") is None
    assert walk(main, "missing.cache") is None
    assert walk(Infra, "number") is None  # an attribute, not a provider


def test_configuration_of_tells_two_configurations_apart() -> None:
    """An option is traced to the configuration it reads from, even when both are "config"."""

    class Settings(containers.DeclarativeContainer):
        config = providers.Configuration()
        other = providers.Configuration()

    roots = {"config": Settings.config, "other": Settings.other}
    assert configuration_of(Settings.other.db.url, roots) == "other"
    assert configuration_of(Settings.config.db.url, roots) == "config"
    assert configuration_of(Settings.config.db.url, {"other": Settings.other}) is None


@pytest.mark.asyncio
async def test_only_coroutines_and_futures_are_results_still_to_come() -> None:
    """Exactly dependency-injector's rule: another awaitable is a value like any other."""

    class Awaitable:
        def __await__(self) -> Iterator[None]:
            yield

    pending = coroutine()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert is_async_result(pending)
    assert is_async_result(future)
    assert not is_async_result(Awaitable())
    assert not is_async_result("value")
    assert await pending == "coroutine"
