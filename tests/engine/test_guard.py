"""The guard: open values handed out only while open, on their own loop, with the advice given."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from asgiref.sync import sync_to_async
from dependency_injector import containers, providers

from lifespan_container.engine.guard import Advice, Guard, here, open_in_thread
from lifespan_container.engine.lifecycle import ResourceLifecycle
from lifespan_container.engine.lifespan import Lifespan
from lifespan_container.engine.limits import Limit
from lifespan_container.exceptions import (
    ResourcesNotStartedError,
    StartupFailedError,
    WrongEventLoopError,
)
from tests.engine.support import loop_of

pytestmark = pytest.mark.asyncio

ADVICE = Advice(
    not_open="ADVICE-NOT-OPEN",
    wrong_loop="ADVICE-WRONG-LOOP",
    wrong_thread="ADVICE-WRONG-THREAD",
    already_open="ADVICE-ALREADY-OPEN",
)
SERVER_WORDS = ("runserver", "runasgi", "daphne", "uvicorn", "asyncclient")


def in_new_thread(function: Callable[[], object]) -> object:
    """What ``function`` returns or raises in a new thread (not one asgiref ever used)."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    return outcome[0]


def in_another_loop(function: Callable[[], object]) -> object:
    """What ``function`` returns or raises inside ``asyncio.run`` in a new thread."""

    async def call() -> object:
        return function()

    return in_new_thread(lambda: asyncio.run(call()))


def open_guard(advice: Advice) -> Guard:
    guard = Guard(frozenset({"pool"}), advice)
    guard.values.update(pool="the pool", settings="the settings")
    guard.loop = asyncio.get_running_loop()
    return guard


def messages_of_errors(guard: Guard) -> list[str]:
    """The guard's three errors: not open, another loop, a thread that cannot reach the loop."""
    with pytest.raises(ResourcesNotStartedError) as not_open:
        guard.hand_out("missing")
    wrong_loop = in_another_loop(lambda: guard.hand_out("pool"))
    wrong_thread = in_new_thread(lambda: guard.hand_out("pool"))
    assert isinstance(wrong_loop, WrongEventLoopError)
    assert isinstance(wrong_thread, WrongEventLoopError)
    return [str(not_open.value), str(wrong_loop), str(wrong_thread)]


async def test_the_guard_hands_out_open_values_on_their_loop() -> None:
    """On the loop, open values are handed out as they are."""
    guard = open_guard(Advice())
    assert here() is asyncio.get_running_loop()
    assert guard.hand_out("pool") == "the pool"
    assert guard.hand_out("settings") == "the settings"


async def test_a_value_that_is_not_loop_bound_may_be_used_anywhere() -> None:
    """A sync resource's value is handed out in any thread and any loop."""
    guard = open_guard(Advice())
    assert in_new_thread(lambda: guard.hand_out("settings")) == "the settings"
    assert in_another_loop(lambda: guard.hand_out("settings")) == "the settings"


async def test_the_guard_refuses_another_loop_and_a_thread_that_cannot_reach_the_loop() -> None:
    """A loop-bound value asked for from asyncio.run in a thread, or a bare thread, is refused."""
    not_open, wrong_loop, wrong_thread = messages_of_errors(open_guard(Advice()))
    assert not_open == (
        "Resource 'missing' is not open: the container's resources open in the ASGI lifespan "
        "startup, and it has not run in this process (or shutdown already ran)."
    )
    assert wrong_loop == (
        "Resource 'pool' belongs to the event loop that ran the lifespan startup, and it was "
        "asked for from another event loop."
    )
    assert wrong_thread == (
        "Resource 'pool' belongs to the event loop that ran the lifespan startup, and it was "
        "asked for from a thread that cannot reach that loop."
    )


async def test_threads_that_can_reach_the_loop_get_loop_bound_values() -> None:
    """asgiref's sync_to_async threads and the lifecycle's opening threads may use the loop."""
    guard = open_guard(Advice())
    loop = asyncio.get_running_loop()
    assert await sync_to_async(guard.hand_out)("pool") == "the pool"
    opened = in_new_thread(lambda: open_in_thread(loop, lambda: guard.hand_out("pool")))
    assert opened == "the pool"


async def test_the_advice_is_appended_to_each_error() -> None:
    """Each error ends with its own piece of advice, after the engine's text."""
    messages = messages_of_errors(open_guard(ADVICE))
    endings = ["ADVICE-NOT-OPEN", "ADVICE-WRONG-LOOP", "ADVICE-WRONG-THREAD"]
    for message, ending in zip(messages, endings, strict=True):
        assert message.endswith(f". {ending}")
        assert [word for word in endings if word in message] == [ending]


async def test_the_engines_own_text_names_no_server_or_client() -> None:
    """Without advice, no message mentions a server or a test client, and none ends in a space."""
    container = containers.DynamicContainer()
    container.pool = providers.Resource(pool)
    lifecycle = ResourceLifecycle(container)
    messages = messages_of_errors(open_guard(Advice()))
    assert await lifecycle.start() == []
    try:
        with pytest.raises(StartupFailedError) as refused:
            await Lifespan(lifecycle).start(Limit(5), Limit(5))
        with pytest.raises(RuntimeError) as twice:
            await lifecycle.start()
    finally:
        assert await lifecycle.stop(5) == []
    messages += [str(refused.value), str(twice.value)]
    for message in messages:
        assert message == message.strip()
        assert not [word for word in SERVER_WORDS if word in message.lower()], message


async def pool() -> AsyncIterator[str]:
    yield "the pool"


def settings() -> Iterator[str]:
    yield "the settings"


async def test_a_lifecycle_guards_its_resources_with_its_advice() -> None:
    """Through the container: not open before start and after stop, refused on another loop."""
    container = containers.DynamicContainer()
    container.pool = providers.Resource(pool)
    container.settings = providers.Resource(settings)
    lifecycle = ResourceLifecycle(container, advice=ADVICE)

    with pytest.raises(ResourcesNotStartedError, match=r"ADVICE-NOT-OPEN$"):
        container.pool()
    assert await lifecycle.start() == []
    try:
        assert container.pool() == "the pool"
        assert loop_of(lifecycle) is asyncio.get_running_loop()
        wrong_loop = in_another_loop(container.pool)
        assert isinstance(wrong_loop, WrongEventLoopError)
        assert str(wrong_loop).endswith("ADVICE-WRONG-LOOP")
        assert in_another_loop(container.settings) == "the settings"
    finally:
        assert await lifecycle.stop(5) == []
    assert loop_of(lifecycle) is None
    with pytest.raises(ResourcesNotStartedError, match=r"ADVICE-NOT-OPEN$"):
        container.settings()


async def test_fast_path_gives_what_inject_needs_for_a_resource_only() -> None:
    """A resource's handle shares the guard's values; another provider has no handle."""
    container = containers.DynamicContainer()
    container.pool = providers.Resource(pool)
    container.settings = providers.Resource(settings)
    container.other = providers.Object(1)
    lifecycle = ResourceLifecycle(container)

    handle = lifecycle.fast_path(container.pool)
    assert handle is not None
    assert (handle.name, handle.loop_bound) == ("pool", True)
    assert handle.guard is lifecycle.guard
    assert handle.values is lifecycle.guard.values
    assert container.pool.last_overriding is handle.overriding
    sync_handle = lifecycle.fast_path(container.settings)
    assert sync_handle is not None
    assert not sync_handle.loop_bound
    assert lifecycle.fast_path(container.other) is None


async def test_a_cell_holds_the_value_exactly_while_it_is_open() -> None:
    """Guard.cell follows every write to the guard's values, before or after it is asked for."""
    guard = Guard(frozenset(), ADVICE)
    cell = guard.cell("pool")
    assert cell == []
    assert guard.cell("pool") is cell
    guard.values["pool"] = "first"
    assert cell == ["first"]
    guard.values["pool"] = "second"
    assert cell == ["second"]
    assert guard.values.pop("pool") == "second"
    assert cell == []
    assert guard.values.pop("pool", None) is None
    guard.values.update(pool="third")
    assert cell == ["third"]
    del guard.values["pool"]
    assert cell == []
    assert guard.values.setdefault("pool", "fourth") == "fourth"
    assert guard.values.setdefault("pool", "other") == "fourth"
    assert cell == ["fourth"]
    guard.values |= {"pool": "fifth"}
    assert cell == ["fifth"]
    assert guard.values.popitem() == ("pool", "fifth")
    assert cell == []
    with pytest.raises(KeyError):
        guard.values.popitem()
    guard.values.update({"pool": "sixth", "settings": "the settings"})
    assert guard.cell("settings") == ["the settings"]  # asked for while open: filled
    guard.values.clear()
    assert cell == []
    assert guard.cell("settings") == []
    assert guard.values == {}


async def test_a_lifecycle_fills_the_cells_at_start_and_empties_them_at_stop() -> None:
    container = containers.DynamicContainer()
    container.pool = providers.Resource(pool)
    container.settings = providers.Resource(settings)
    lifecycle = ResourceLifecycle(container)
    cell = lifecycle.guard.cell("pool")
    for _ in range(2):
        assert await lifecycle.start() == []
        assert cell == [lifecycle.guard.values["pool"]]
        assert lifecycle.guard.cell("settings") == ["the settings"]
        assert await lifecycle.stop(5) == []
        assert cell == []
        assert lifecycle.guard.cell("settings") == []


async def test_the_thread_check_holds_exactly_where_the_loop_runs() -> None:
    """``@inject``'s loop check on 3.11: the loop's thread is this thread only while
    that loop runs here; elsewhere (another thread, a loop not running) it does not
    hold, and ``hand_out`` decides."""
    from lifespan_container.engine.guard import this_thread  # noqa: PLC0415

    running = asyncio.get_running_loop()
    assert this_thread() == getattr(running, "_thread_id", None)
    seen: list[bool] = []
    other = threading.Thread(
        target=lambda: seen.append(this_thread() == getattr(running, "_thread_id", None))
    )
    other.start()
    other.join(10)
    assert seen == [False]
    idle = asyncio.new_event_loop()
    try:
        assert this_thread() != getattr(idle, "_thread_id", None)
    finally:
        idle.close()
