"""The request scope in plain asyncio: every kind of value, each close passed the failure."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from dependency_injector import resources

from lifespan_container.engine.limits import Limit
from lifespan_container.engine.request_scope import RequestScope, drive_kind
from lifespan_container.exceptions import RequestScopeError
from tests.clock import LoopClock, until

pytestmark = pytest.mark.asyncio

LIMIT = Limit(10.0, "REQUEST-LIMIT")

Seen = list[tuple[str, Any]]


async def inline(function: Callable[[], None]) -> None:
    function()


async def agen(seen: Seen, name: str) -> AsyncIterator[str]:
    try:
        yield name
    except BaseException as error:
        seen.append((name, error))
        raise
    seen.append((name, None))


def gen(seen: Seen, name: str) -> Iterator[str]:
    try:
        yield name
    except BaseException as error:
        seen.append((name, error))
        raise
    seen.append((name, None))


class SyncManager:
    def __init__(self, seen: Seen, name: str) -> None:
        self.seen, self.name = seen, name

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        self.seen.append((self.name, error))


class AsyncManager:
    def __init__(self, seen: Seen, name: str) -> None:
        self.seen, self.name = seen, name

    async def __aenter__(self) -> str:
        return self.name

    async def __aexit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        self.seen.append((self.name, error))


class DIResource(resources.Resource[str]):
    def init(self, seen: Seen, name: str) -> str:
        self.seen = seen
        return name

    def shutdown(self, resource: str | None) -> None:
        self.seen.append((str(resource), None))


class DIAsyncResource(resources.AsyncResource[str]):
    async def init(self, seen: Seen, name: str) -> str:
        self.seen = seen
        return name

    async def shutdown(self, resource: str | None) -> None:
        self.seen.append((str(resource), None))


async def coroutine_of_manager(seen: Seen, name: str) -> AsyncManager:
    return AsyncManager(seen, name)


KINDS: dict[str, Callable[[Seen, str], object]] = {
    "async generator": agen,
    "generator": gen,
    "sync context manager": SyncManager,
    "async context manager": AsyncManager,
    "contextmanager factory": contextlib.contextmanager(gen),
    "asynccontextmanager factory": contextlib.asynccontextmanager(agen),
    "resources.Resource": DIResource,
    "resources.AsyncResource": DIAsyncResource,
    "coroutine giving a manager": coroutine_of_manager,
}
ASYNC_KINDS = {
    "async generator",
    "async context manager",
    "asynccontextmanager factory",
    "resources.AsyncResource",
    "coroutine giving a manager",
}


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_opens_and_closes_with_no_failure(kind: str) -> None:
    seen: Seen = []
    scope = RequestScope(label="/path/")
    initial = KINDS[kind](seen, "value")
    assert drive_kind(initial) == ("async" if kind in ASYNC_KINDS else "sync")
    assert await scope.open("key", "value", initial) == "value"
    assert scope.values == {"key": "value"}
    assert seen == []
    await scope.aclose(None, LIMIT, inline)
    assert seen == [("value", None)]
    assert scope.closed
    assert scope.values == {}


@pytest.mark.parametrize(
    "kind", ["async generator", "generator", "sync context manager", "async context manager"]
)
async def test_the_failure_is_thrown_into_each_value(kind: str) -> None:
    seen: Seen = []
    scope = RequestScope()
    await scope.open("key", "value", KINDS[kind](seen, "value"))
    failure = ValueError("the view failed")
    await scope.aclose(failure, LIMIT, inline)
    assert seen == [("value", failure)]


async def test_values_close_newest_first_and_a_failing_close_reaches_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: Seen = []
    scope = RequestScope(label="/orders/")

    async def breaks() -> AsyncIterator[str]:
        yield "breaks"
        msg = "commit failed"
        raise RuntimeError(msg)

    await scope.open("first", "first", agen(seen, "first"))
    scope.open_sync("second", "second", gen(seen, "second"))
    await scope.open("third", "third", breaks())
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        await scope.aclose(None, LIMIT, inline)
    [(second, second_saw), (first, first_saw)] = seen
    assert (second, first) == ("second", "first")
    assert isinstance(second_saw, RuntimeError)
    assert first_saw is second_saw
    [record] = caplog.records
    assert record.getMessage().startswith(
        "Request-scoped resource 'third' failed to close for /orders/"
    )
    assert record.exc_info is not None


async def test_a_generator_that_swallows_or_reraises_is_closed_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def swallows() -> AsyncIterator[str]:
        with contextlib.suppress(ValueError):
            yield "swallows"

    scope = RequestScope()
    await scope.open("a", "swallows", swallows())
    await scope.open("b", "reraises", agen([], "reraises"))
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        await scope.aclose(ValueError("no"), LIMIT, inline)
    assert caplog.records == []


async def test_a_generator_that_yields_twice_is_a_logged_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def twice() -> AsyncIterator[str]:
        yield "one"
        yield "two"

    scope = RequestScope(label="/twice/")
    await scope.open("key", "twice", twice())
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        await scope.aclose(None, LIMIT, inline)
    [record] = caplog.records
    assert "'twice' failed to close" in record.getMessage()
    assert record.exc_info is not None
    assert "yielded more than once" in str(record.exc_info[1])


async def test_a_generator_that_never_yields_fails_to_open() -> None:
    async def empty() -> AsyncIterator[str]:
        return
        yield  # pragma: no cover

    scope = RequestScope()
    with pytest.raises(RequestScopeError, match="did not yield a value"):
        await scope.open("key", "empty", empty())
    assert scope.opened == []


async def test_a_hung_async_close_is_cancelled_at_the_limit(
    clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    never = asyncio.Event()
    started = asyncio.Event()
    cleaned: list[str] = []

    async def hangs() -> AsyncIterator[str]:
        try:
            yield "hangs"
        finally:
            started.set()
            try:
                await never.wait()
            finally:
                cleaned.append("finally ran")

    seen: Seen = []
    scope = RequestScope(label="/hang/")
    await scope.open("first", "first", agen(seen, "first"))
    await scope.open("hangs", "hangs", hangs())
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        closing = asyncio.ensure_future(scope.aclose(None, LIMIT, inline))
        await started.wait()
        clock.advance(10.5)
        await closing
    assert cleaned == ["finally ran"]
    assert seen == [("first", None)]  # the next close still ran, with nothing to throw
    [record] = caplog.records
    assert "'hangs' for /hang/ did not finish" in record.getMessage()
    assert "REQUEST-LIMIT" in record.getMessage()
    assert not closing.cancelled()


async def test_the_request_being_cancelled_is_not_taken_for_the_limit() -> None:
    """A cancel during a close is the request's: the older values still close, passed
    it, and it is raised at the end."""
    started = asyncio.Event()
    seen: Seen = []

    async def hangs() -> AsyncIterator[str]:
        try:
            yield "hangs"
        finally:
            started.set()
            await asyncio.Event().wait()  # never set

    scope = RequestScope()
    await scope.open_generator("older", "older", agen(seen, "older"))
    await scope.open_generator("hangs", "hangs", hangs())
    closing = asyncio.ensure_future(scope.aclose(None, LIMIT, inline))
    await started.wait()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    [(name, saw)] = seen
    assert name == "older"
    assert isinstance(saw, asyncio.CancelledError)


async def test_a_hung_sync_close_is_given_up_at_the_limit_and_finishes_later(
    clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    started = threading.Event()
    seen: Seen = []

    def hangs() -> Iterator[str]:
        yield "hangs"
        started.set()
        release.wait(timeout=30)  # the test sets it once the limit has passed

    async def in_a_thread(function: Callable[[], None]) -> None:
        await asyncio.to_thread(function)

    scope = RequestScope(label="/sync-hang/")
    scope.open_sync("older", "older", gen(seen, "older"))
    scope.open_sync("hangs", "hangs", hangs())
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        closing = asyncio.ensure_future(scope.aclose(None, LIMIT, in_a_thread))
        await until(started.is_set, "the close started in its thread")
        clock.advance(10.5)
        await closing
        messages = [record.getMessage() for record in caplog.records]
        assert seen == []
        release.set()
        await until(lambda: bool(seen), "the queued close ran after the hung one")
    assert seen == [("older", None)]
    assert len(messages) == 2
    assert all("did not finish" in message and "/sync-hang/" in message for message in messages)


async def test_a_value_asked_for_after_the_close_is_a_clear_error() -> None:
    scope = RequestScope(label="/done/")
    await scope.open("key", "value", agen([], "value"))
    await scope.aclose(None, LIMIT, inline)
    with pytest.raises(RequestScopeError, match=r"used after its request \(/done/\) ended"):
        scope.value("key", "value")


async def test_opening_and_closing_log_debug_records_with_durations(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scope = RequestScope(label="/logged/")
    with caplog.at_level(logging.DEBUG, "lifespan_container.resources"):
        await scope.open("key", "conn", agen([], "conn"))
        await scope.aclose(None, LIMIT, inline)
    opened, closed = caplog.records
    assert opened.getMessage().startswith("Opened request-scoped resource 'conn' for /logged/ in")
    assert closed.getMessage().startswith("Closed request-scoped resource 'conn' for /logged/ in")
    for record in (opened, closed):
        assert record.resource == "conn"  # type: ignore[attr-defined]
        assert record.request == "/logged/"  # type: ignore[attr-defined]
        assert record.duration >= 0  # type: ignore[attr-defined]


async def test_a_scope_that_refuses_async_values_says_why() -> None:
    scope = RequestScope()
    scope.async_refused = "REASON."
    with pytest.raises(RequestScopeError, match=r"'conn' is async: REASON\."):
        await scope.open("key", "conn", agen([], "conn"))
    assert await scope.open("sync", "sync", gen([], "sync")) == "sync"
    scope.close_sync(None)


async def test_the_first_failure_wins() -> None:
    scope = RequestScope()
    first, second = ValueError("first"), KeyError("second")
    scope.fail(first)
    scope.fail(second)
    assert scope.error is first


async def test_a_value_opened_after_the_request_ended_is_closed_at_once() -> None:
    """Work that outlived its request (a task the view started) cannot keep a value."""
    seen: Seen = []
    scope = RequestScope(label="/gone/")
    await scope.aclose(None, LIMIT, inline)
    with pytest.raises(RequestScopeError, match=r"request \(/gone/\) ended while 'late'"):
        await scope.open_generator("key", "late", agen(seen, "late"))
    with pytest.raises(RequestScopeError, match=r"request \(/gone/\) ended while 'sync'"):
        scope.open_sync("other", "sync", gen(seen, "sync"))
    assert seen == [("late", None), ("sync", None)]
    assert scope.values == {}
    assert scope.opened == []


async def test_a_close_that_waits_once_finishes_under_its_timer() -> None:
    """The first step of a close runs at once; one that waits is resumed by the loop."""
    seen: Seen = []
    gate = asyncio.Event()

    async def waits() -> AsyncIterator[str]:
        yield "waits"
        await gate.wait()
        seen.append(("waits", None))

    scope = RequestScope()
    await scope.open_generator("a", "first", agen(seen, "first"))
    await scope.open_generator("b", "waits", waits())
    rest = scope.close_now(None, LIMIT, inline)
    assert rest is not None
    assert seen == []
    gate.set()
    await rest
    assert seen == [("waits", None), ("first", None)]


async def test_closes_that_do_not_wait_are_done_before_close_now_returns() -> None:
    seen: Seen = []
    scope = RequestScope()
    await scope.open_generator("a", "first", agen(seen, "first"))
    await scope.open_generator("b", "second", agen(seen, "second"))
    assert scope.close_now(None, LIMIT, inline) is None
    assert seen == [("second", None), ("first", None)]


async def test_a_value_not_opened_in_this_request_is_named() -> None:
    with pytest.raises(RequestScopeError, match="'conn' is not open in this request"):
        RequestScope().value("key", "conn")


async def test_open_generator_reports_a_generator_that_never_yields_or_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def empty() -> AsyncIterator[str]:
        return
        yield  # pragma: no cover

    async def broken() -> AsyncIterator[str]:
        msg = "no connection"
        raise OSError(msg)
        yield  # type: ignore[unreachable]  # pragma: no cover

    scope = RequestScope(label="/open/")
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        with pytest.raises(RequestScopeError, match="did not yield a value"):
            await scope.open_generator("a", "empty", empty())
        with pytest.raises(OSError, match="no connection"):
            await scope.open_generator("b", "broken", broken())
    assert [r.getMessage().split(" failed")[0] for r in caplog.records] == [
        "Request-scoped resource 'empty'",
        "Request-scoped resource 'broken'",
    ]
    assert scope.opened == []


def _opening(scope: RequestScope) -> bool:
    return bool(scope.opening)


async def test_an_open_that_waits_is_shared_and_its_failures_reach_every_asker() -> None:
    gate = asyncio.Event()
    seen: Seen = []

    async def waits(outcome: str) -> AsyncIterator[str]:
        await gate.wait()
        if outcome == "raise":
            msg = "checkout failed"
            raise ConnectionError(msg)
        if outcome == "return":
            return
        try:
            yield "value"
        finally:
            seen.append(("waits", None))

    for outcome, expected in (
        ("yield", None),
        ("raise", ConnectionError),
        ("return", RequestScopeError),
    ):
        gate.clear()
        scope = RequestScope()
        first = asyncio.ensure_future(scope.open_generator("key", "conn", waits(outcome)))
        await until(functools.partial(_opening, scope), "the first open is under way")
        second = asyncio.ensure_future(scope.open("key", "conn", waits("yield")))
        gate.set()
        results: list[object] = list(await asyncio.gather(first, second, return_exceptions=True))
        if expected is None:
            assert results == ["value", "value"]
            assert len(scope.opened) == 1  # opened once, for both
            await scope.aclose(None, LIMIT, inline)
        else:
            assert all(isinstance(result, expected) for result in results), results
            assert scope.opened == []
        assert scope.opening is None
    assert seen == [("waits", None)]


async def test_an_open_that_waits_can_be_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    async def waits() -> AsyncIterator[str]:
        await asyncio.Event().wait()  # never set
        yield "never"  # pragma: no cover

    scope = RequestScope(label="/cancelled/")
    opening = asyncio.ensure_future(scope.open_generator("key", "conn", waits()))
    await until(lambda: bool(scope.opening), "the open is under way")
    with caplog.at_level(logging.WARNING, "lifespan_container.resources"):
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
    assert "Opening request-scoped resource 'conn' for /cancelled/ was cancelled" in (
        caplog.records[0].getMessage()
    )
    assert scope.opening is None


async def test_a_value_opened_while_the_request_ended_is_closed_at_once() -> None:
    gate = asyncio.Event()
    seen: Seen = []

    async def waits() -> AsyncIterator[str]:
        await gate.wait()
        try:
            yield "late"
        finally:
            seen.append(("late", None))

    scope = RequestScope(label="/raced/")
    opening = asyncio.ensure_future(scope.open_generator("key", "late", waits()))
    await until(lambda: bool(scope.opening), "the open is under way")
    await scope.aclose(None, LIMIT, inline)
    gate.set()
    with pytest.raises(RequestScopeError, match=r"request \(/raced/\) ended while 'late'"):
        await opening
    assert seen == [("late", None)]


async def test_the_general_open_drops_what_another_task_already_opened() -> None:
    scope = RequestScope()
    value = await scope.open_generator("key", "conn", agen([], "conn"))

    async def coroutine() -> str:
        return "other"  # pragma: no cover (closed unawaited)

    assert await scope.open("key", "conn", coroutine()) == value
    assert len(scope.opened) == 1
    await scope.aclose(None, LIMIT, inline)


async def test_the_general_open_reports_a_failure_and_refuses_async_values_with_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        async def __aenter__(self) -> str:
            msg = "cannot enter"
            raise LookupError(msg)

        async def __aexit__(self, *exc: object) -> None: ...  # pragma: no cover

    async def coroutine() -> str:
        return "never"  # pragma: no cover

    scope = RequestScope(label="/general/")
    with (
        caplog.at_level(logging.ERROR, "lifespan_container.resources"),
        pytest.raises(LookupError, match="cannot enter"),
    ):
        await scope.open("a", "broken", Broken())
    assert "'broken' failed to open for /general/" in caplog.records[0].getMessage()
    scope.async_refused = "REASON."
    with pytest.raises(RequestScopeError, match="REASON"):
        await scope.open("b", "coroutine", coroutine())


async def test_a_sync_value_opened_after_the_request_ended_is_closed_at_once() -> None:
    seen: Seen = []
    scope = RequestScope(label="/gone/")
    await scope.aclose(None, LIMIT, inline)
    with pytest.raises(RequestScopeError, match="ended while 'manager'"):
        await scope.open("key", "manager", SyncManager(seen, "manager"))
    assert seen == [("manager", None)]


async def test_a_close_that_waits_then_yields_again_or_fails_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def waits_then_yields() -> AsyncIterator[str]:
        yield "one"
        await asyncio.sleep(0)  # a suspension point, not a delay
        yield "two"

    class ExitFails:
        async def __aenter__(self) -> str:
            return "manager"

        async def __aexit__(self, *exc: object) -> None:
            await asyncio.sleep(0)  # a suspension point, not a delay
            msg = "exit failed"
            raise RuntimeError(msg)

    scope = RequestScope(label="/close/")
    await scope.open("a", "manager", ExitFails())
    await scope.open_generator("b", "twice", waits_then_yields())
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        await scope.aclose(None, LIMIT, inline)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("Request-scoped resource 'twice' failed to close for /close/")
    assert messages[1].startswith("Request-scoped resource 'manager' failed to close for /close/")
    assert "yielded more than once" in str(caplog.records[0].exc_info[1])  # type: ignore[index]


async def test_sync_closes_in_this_thread_report_failures_and_pass_them_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: Seen = []

    def breaks() -> Iterator[str]:
        yield "breaks"
        msg = "rollback failed"
        raise RuntimeError(msg)

    def twice() -> Iterator[str]:
        yield "one"
        yield "two"

    scope = RequestScope(label="/sync/")
    scope.open_sync("a", "first", gen(seen, "first"))
    scope.open_sync("b", "breaks", breaks())
    scope.open_sync("c", "plain", object())  # a value with nothing to close
    other = RequestScope(label="/sync/")
    other.open_sync("d", "twice", twice())
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        scope.close_sync(None)
        other.close_sync(None)
    assert [r.getMessage().split(" failed")[0] for r in caplog.records] == [
        "Request-scoped resource 'breaks'",
        "Request-scoped resource 'twice'",
    ]
    [(name, saw)] = seen
    assert name == "first"
    assert isinstance(saw, RuntimeError)  # what the close after it raised
