"""The loop thread: sync code reaches one event loop through asgiref, and nothing outlives it."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async

from lifespan_container.engine.loop_thread import LoopThread, detached
from tests.lifespan_driver import WAIT


def loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "test-loop"]


def test_a_call_runs_on_the_loop_in_its_thread() -> None:
    with LoopThread("test-loop") as thread:

        async def where() -> tuple[asyncio.AbstractEventLoop, int]:
            return asyncio.get_running_loop(), threading.get_ident()

        loop, ident = thread.call(where)
        assert loop is thread.loop
        assert ident != threading.get_ident()
        assert loop_threads()[0].ident == ident


def test_async_to_sync_in_the_entering_thread_runs_on_the_same_loop_every_time() -> None:
    """As Django's sync handler calls an async view: on the one loop, not a new one per call."""
    with LoopThread("test-loop") as thread:

        async def running_loop() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        assert {async_to_sync(running_loop)() for _ in range(3)} == {thread.loop}


def test_thread_sensitive_work_of_a_call_comes_back_to_the_entering_thread() -> None:
    """The ORM's thread: Django's connection (and a TestCase's transaction) is per thread."""
    with LoopThread("test-loop") as thread:

        def ident() -> int:
            return threading.get_ident()

        async def view() -> int:
            return await sync_to_async(ident, thread_sensitive=True)()

        assert thread.call(view) == threading.get_ident()
        assert async_to_sync(view)() == threading.get_ident()


def test_an_exception_of_the_coroutine_reaches_the_caller() -> None:
    with LoopThread("test-loop") as thread:

        async def fails() -> None:
            raise LookupError("from the loop")

        with pytest.raises(LookupError, match="from the loop"):
            thread.call(fails)


def test_the_exit_cancels_and_awaits_what_is_left_then_ends_the_thread() -> None:
    cancelled = threading.Event()
    with LoopThread("test-loop") as thread:

        async def left_running() -> None:
            try:
                await asyncio.Event().wait()  # never set
            except asyncio.CancelledError:
                cancelled.set()
                raise

        tasks: list[asyncio.Task[None]] = []

        async def start() -> None:
            tasks.append(asyncio.ensure_future(left_running()))
            await asyncio.sleep(0)  # it starts waiting

        thread.call(start)
        loop = thread.loop
        assert loop is not None
    assert cancelled.is_set()
    assert tasks[0].cancelled()
    assert loop.is_closed()
    assert not loop_threads()
    assert thread.loop is None


def test_the_entering_thread_gets_back_what_asgiref_knew_of_it() -> None:
    """Nested blocks, and a thread that was no loop's before: each exit undoes its enter."""
    local = SyncToAsync.threadlocal
    assert not hasattr(local, "main_event_loop")
    with LoopThread("test-loop") as outer:
        with LoopThread("test-loop") as inner:
            assert local.main_event_loop is inner.loop
        assert local.main_event_loop is outer.loop
    assert not hasattr(local, "main_event_loop")
    assert not hasattr(local, "main_event_loop_pid")


def test_a_call_outside_the_block_says_so() -> None:
    thread = LoopThread("test-loop")

    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match="inside its `with` block"):
        thread.call(nothing)


@pytest.mark.asyncio
async def test_it_refuses_a_thread_that_runs_a_loop_already() -> None:
    with pytest.raises(RuntimeError, match="use `async with`"):
        LoopThread("test-loop").__enter__()
    assert not loop_threads()


def test_a_loop_not_adopted_is_reached_by_call_only() -> None:
    """A loop for a server of the test's own: sync code's async_to_sync goes elsewhere."""
    with LoopThread("test-loop", adopt=False) as thread:

        async def running_loop() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        assert thread.call(running_loop) is thread.loop
        assert async_to_sync(running_loop)() is not thread.loop
        assert not hasattr(SyncToAsync.threadlocal, "main_event_loop")


def test_overlapping_blocks_exited_out_of_order_each_reach_their_own_loop() -> None:
    """Two blocks that do not nest: each call goes to its own loop, and async_to_sync
    to the newest block still open; the thread ends as it began."""
    local = SyncToAsync.threadlocal

    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    first = LoopThread("test-loop").__enter__()
    second = LoopThread("test-loop").__enter__()
    try:
        first_loop = first.loop
        assert first_loop is not None
        assert first.call(running_loop) is first.loop
        assert second.call(running_loop) is second.loop
        assert async_to_sync(running_loop)() is second.loop
        first.__exit__(None, None, None)  # the older one first
        assert first_loop.is_closed()
        assert local.main_event_loop is second.loop
        assert second.call(running_loop) is second.loop
    finally:
        first.__exit__(None, None, None)  # nothing left to do if exited above
        second.__exit__(None, None, None)
    assert not hasattr(local, "main_event_loop")
    assert not loop_threads()


def test_an_exit_from_another_thread_says_so_and_stops_the_loop_all_the_same() -> None:
    thread = LoopThread("test-loop").__enter__()
    loop = thread.loop
    assert loop is not None
    raised: list[BaseException] = []

    def exit_here() -> None:
        try:
            thread.__exit__(None, None, None)
        except RuntimeError as error:
            raised.append(error)

    other = threading.Thread(target=exit_here)
    other.start()
    other.join(WAIT)
    assert "exited in the thread that entered it" in str(raised[0])
    assert loop.is_closed()
    assert not loop_threads()
    thread.__exit__(None, None, None)  # in its own thread: it gets back what asgiref knew

    assert not hasattr(SyncToAsync.threadlocal, "main_event_loop")


def test_a_block_is_entered_once() -> None:
    with LoopThread("test-loop") as thread, pytest.raises(RuntimeError, match="enter it once"):
        thread.__enter__()
    assert not loop_threads()


def test_a_task_that_outlives_its_call_sends_sync_work_to_the_thread_of_a_later_call() -> None:
    """As the lifespan held between two calls: its shutdown's sync receivers run in the
    thread that calls for the shutdown, not through the first call's executor (quit)."""
    with LoopThread("test-loop") as thread:
        go = asyncio.Event()
        tasks: list[asyncio.Task[int]] = []

        async def later_sync_work() -> int:
            await go.wait()
            return await sync_to_async(threading.get_ident, thread_sensitive=True)()

        async def start() -> None:
            tasks.append(detached(later_sync_work()))

        async def finish() -> int:
            go.set()
            return await tasks[0]

        thread.call(start)
        assert thread.call(finish) == threading.get_ident()


def test_calls_from_two_threads_each_take_back_only_their_own_thread() -> None:
    """The first caller ends while the second still waits: sync work of the loop goes
    to the second caller's thread, not nowhere (nor to the first's, which quit)."""
    with LoopThread("test-loop") as thread:
        loop = thread.loop
        assert loop is not None
        go, tasks = asyncio.Event(), []
        release = {"first": asyncio.Event(), "second": asyncio.Event()}
        waiting = {"first": threading.Event(), "second": threading.Event()}
        idents: dict[str, int] = {}

        async def sync_work_later() -> int:
            await go.wait()
            return await sync_to_async(threading.get_ident, thread_sensitive=True)()

        async def prepare() -> None:
            tasks.append(detached(sync_work_later()))

        thread.call(prepare)

        def caller(name: str) -> None:
            idents[name] = threading.get_ident()

            async def wait() -> None:
                waiting[name].set()  # this thread is the loop's sync thread now
                await release[name].wait()

            thread.call(wait)

        callers = [threading.Thread(target=caller, args=(name,)) for name in release]
        try:
            for name, started in zip(release, callers, strict=True):
                started.start()
                assert waiting[name].wait(WAIT)
            loop.call_soon_threadsafe(release["first"].set)
            callers[0].join(WAIT)
            loop.call_soon_threadsafe(go.set)
            done = asyncio.run_coroutine_threadsafe(asyncio.wait_for(tasks[0], WAIT), loop)
            assert done.result(WAIT) == idents["second"]
        finally:
            for event in release.values():
                loop.call_soon_threadsafe(event.set)
            for started in callers:
                started.join(WAIT)
        assert not any(started.is_alive() for started in callers)
