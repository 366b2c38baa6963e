"""Request-scoped resources under the handler: opened once, closed after the response.

The raw ASGI tests drive the handler with a ``receive`` the test controls, so a
client that goes away mid-response is an event the test sets, never a sleep.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.core.exceptions import RequestAborted

from lifespan_container import RequestResource
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan_client, override, use_container
from tests.clock import LoopClock
from tests.conftest import Registry
from tests.lifespan_driver import WAIT, Exchange
from tests.request_scope_app import Record, ScopedContainer, Value, make_container, make_views

pytestmark = pytest.mark.asyncio

CLOSED_NORMALLY = ["open outer", "open inner", "close inner", "close outer"]


@pytest.fixture
def record() -> Record:
    return Record()


@pytest.fixture
def runtime(record: Record, registry: Registry, settings: Any) -> Iterator[Runtime]:
    settings.ROOT_URLCONF = "tests.request_scope_app"
    make_views()
    with use_container(make_container(record)) as runtime:
        yield runtime


async def test_nested_resources_open_once_in_order_and_close_in_reverse(
    runtime: Runtime, record: Record
) -> None:
    """Every parameter and provider of the request gets the same values; closed newest first."""
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/nested/")
        assert response.status_code == 200
        assert response.json()["same"] is True
        assert response.json()["path"] == "/nested/"
        assert record.names() == CLOSED_NORMALLY
        assert record.errors == {"inner": None, "outer": None}


async def test_concurrent_requests_never_share_a_value(runtime: Runtime, record: Record) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        responses = await asyncio.gather(*(client.get("/nested/") for _ in range(20)))
    assert all(response.json()["same"] for response in responses)
    assert record.names().count("open outer") == 20
    assert record.names().count("close outer") == 20


async def test_a_view_that_raises_throws_its_exception_in(runtime: Runtime, record: Record) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/fails/")
    assert response.status_code == 500
    error = record.errors["outer"]
    assert isinstance(error, ValueError)
    assert str(error) == "the view failed"


async def test_a_stream_keeps_the_value_open_until_its_last_chunk(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/stream/")
        assert response.text == "0:True;1:True;2:True;"
        assert record.names() == CLOSED_NORMALLY
        assert record.errors == {"inner": None, "outer": None}


async def test_a_stream_over_a_sync_iterator_keeps_the_value_open(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        with pytest.warns(Warning, match="synchronous iterators"):  # Django's own warning
            response = await client.get("/stream_sync_iterator/")
        assert response.text == "0:True;1:True;2:True;"
        assert record.names() == CLOSED_NORMALLY


async def test_a_stream_that_fails_throws_its_exception_in(
    runtime: Runtime, record: Record
) -> None:
    exchange = Exchange(LifespanHandler(runtime), "/stream_fails/")
    with pytest.raises(OSError, match="the stream failed"):
        await exchange.run()
    assert isinstance(record.errors["outer"], OSError)
    assert record.names() == ["open outer", "close outer"]
    record.errors.clear()  # its traceback holds Django's frames, and the body file
    gc.collect()  # had the file been left open (Django 5.2 does), its warning fails this test


async def test_a_disconnect_mid_stream_closes_with_request_aborted(
    runtime: Runtime, record: Record
) -> None:
    """The value stays open while the body streams; the client going away is thrown in."""
    exchange = Exchange(LifespanHandler(runtime), "/stream_waits/")
    task = exchange.run()
    await record.waiting.wait()  # the first chunk is out, the stream waits
    assert exchange.body_started.is_set()
    assert record.names() == ["open outer"]
    exchange.disconnect.set()
    await task
    assert record.names() == ["open outer", "close outer"]
    assert isinstance(record.errors["outer"], RequestAborted)


async def test_a_disconnect_while_the_view_runs_closes_with_request_aborted(
    runtime: Runtime, record: Record
) -> None:
    exchange = Exchange(LifespanHandler(runtime), "/waits/")
    task = exchange.run()
    await record.waiting.wait()
    exchange.disconnect.set()
    await task
    assert record.names() == ["open outer", "close outer"]
    assert isinstance(record.errors["outer"], RequestAborted)
    assert not exchange.sent


async def test_a_server_that_cancels_the_request_gets_it_closed(
    runtime: Runtime, record: Record, settings: Any
) -> None:
    # A cleanup limit no sibling could reach: a close that waited for it would stall.
    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, "REQUEST_CLEANUP_TIMEOUT": 3600}
    exchange = Exchange(LifespanHandler(runtime), "/waits/")
    task = exchange.run()
    await record.waiting.wait()
    task.cancel()
    async with asyncio.timeout(WAIT):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert record.names() == ["open outer", "close outer"]  # closed before it returned
    assert isinstance(record.errors["outer"], RequestAborted)


async def test_a_cancel_after_the_whole_response_was_sent_closes_normally(
    runtime: Runtime, record: Record
) -> None:
    """The client got its complete response: nothing after that rolls it back."""
    exchange = Exchange(LifespanHandler(runtime), "/nested/")
    task = exchange.run()
    await exchange.disconnect.wait()  # set with the last body message
    task.cancel()  # lands in Django's closing of the response, after the last chunk
    with pytest.raises(asyncio.CancelledError):
        await task
    assert record.names() == CLOSED_NORMALLY
    assert record.errors == {"inner": None, "outer": None}


async def test_two_tasks_of_one_request_get_one_value(runtime: Runtime, record: Record) -> None:
    """A value still opening is awaited by the other task, never opened twice."""
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/one_value_for_two_tasks/")
    assert response.json() == {"same": True}
    assert record.names() == ["open waits_to_open", "close waits_to_open"]


async def test_an_exception_the_view_handles_is_no_failure(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/catches/")
    assert response.text == "handled"
    assert record.errors == {"outer": None}


async def test_overriding_a_consumer_opens_nothing_real(runtime: Runtime, record: Record) -> None:
    with override("repo", ("fake",)):
        async with lifespan_client(LifespanHandler(runtime)) as client:
            response = await client.get("/uses_repo/")
    assert response.text == "('fake',)"
    assert record.names() == []


async def test_a_request_resource_can_be_overridden_by_another(
    runtime: Runtime, record: Record
) -> None:
    async def fake_outer() -> AsyncIterator[Value]:
        record.events.append(("open", "fake"))
        yield Value("fake", "/fake-generator/")
        record.events.append(("close", "fake"))

    with override("outer", RequestResource(fake_outer)):
        async with lifespan_client(LifespanHandler(runtime)) as client:
            response = await client.get("/fails_after_the_view/")
    assert response.text == "fine"
    assert record.names() == ["open fake", "close fake"]


async def test_the_disconnect_every_server_reports_after_the_last_chunk_is_no_failure(
    runtime: Runtime, record: Record
) -> None:
    """uvicorn and httpx answer ``http.disconnect`` as soon as the response is complete."""
    exchange = Exchange(LifespanHandler(runtime), "/stream/")
    await exchange.run()
    assert record.errors == {"inner": None, "outer": None}
    assert b"".join(m.get("body", b"") for m in exchange.sent[1:]) == b"0:True;1:True;2:True;"


async def test_a_sync_resource_opens_and_closes_in_the_sync_views_thread(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/sync_view/")
    assert response.json()["open"] is True
    opened_in, closed_in = record.threads["sync"]
    assert opened_in == closed_in == response.json()["thread"]
    assert opened_in != threading.get_ident()
    assert record.names() == ["open sync", "close sync"]


async def test_an_async_resource_in_a_sync_view_is_opened_and_closed_on_the_loop(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/sync_view_async_resource/")
    assert response.text == "/sync_view_async_resource/"
    assert record.names() == ["open outer", "close outer"]
    assert record.errors["outer"] is None


async def test_an_override_replaces_the_value_without_opening_the_real_one(
    runtime: Runtime, record: Record
) -> None:
    fake = Value("fake", "/fake/")
    with override("outer", fake):
        async with lifespan_client(LifespanHandler(runtime)) as client:
            response = await client.get("/nested/")
    assert response.json()["path"] == "/fake/"
    assert record.names() == ["open inner", "close inner"]


async def test_a_cleanup_that_hangs_is_cancelled_at_the_limit_and_logged(
    runtime: Runtime,
    record: Record,
    clock: LoopClock,
    caplog: pytest.LogCaptureFixture,
    settings: Any,
) -> None:
    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, "REQUEST_CLEANUP_TIMEOUT": 10.0}
    exchange = Exchange(LifespanHandler(runtime), "/hanging_cleanup/")
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        task = exchange.run()
        await record.cleanup_started.wait()
        assert exchange.sent[-1].get("more_body", False) is False  # the response is out
        clock.advance(10.5)
        await task
    assert record.names() == ["open hangs", "close hangs"]
    [message] = [r.getMessage() for r in caplog.records]
    assert "'hanging_cleanup'" not in message
    assert "'hangs'" in message
    assert "/hanging_cleanup/" in message
    assert "REQUEST_CLEANUP_TIMEOUT" in message


async def test_a_cleanup_that_raises_is_logged_and_the_next_close_sees_it(
    runtime: Runtime, record: Record, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "lifespan_container.resources"):
        async with lifespan_client(LifespanHandler(runtime)) as client:
            response = await client.get("/failing_cleanup/")
    assert response.status_code == 200
    assert response.text == "breaks"
    assert record.names() == ["open outer", "open breaks", "close breaks", "close outer"]
    assert isinstance(record.errors["outer"], RuntimeError)
    [failure] = caplog.records
    assert "'breaks'" in failure.getMessage()
    assert "/failing_cleanup/" in failure.getMessage()
    assert failure.exc_info is not None


async def test_a_middleware_that_fails_after_the_view_throws_its_exception_in(
    runtime: Runtime, record: Record, settings: Any
) -> None:
    settings.MIDDLEWARE = ["tests.request_scope_app.FailsAfterTheView"]
    async with lifespan_client(LifespanHandler()) as client:
        response = await client.get("/fails_after_the_view/")
    assert response.status_code == 500
    assert isinstance(record.errors["outer"], LookupError)


async def test_a_file_response_closes_after_its_last_chunk(
    runtime: Runtime, record: Record
) -> None:
    exchange = Exchange(LifespanHandler(runtime), "/file/")
    with pytest.warns(Warning, match="synchronous iterators"):  # Django's own warning
        await exchange.run()
    body = b"".join(message.get("body", b"") for message in exchange.sent[1:])
    assert body == b"x" * 100_000
    assert record.names() == ["open outer", "close outer"]
    assert record.errors["outer"] is None


async def test_the_overrides_fixture_replaces_a_request_resource(
    runtime: Runtime, record: Record, overrides: Any
) -> None:
    overrides("outer", Value("fake", "/from-the-fixture/"))
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/nested/")
    assert response.json()["path"] == "/from-the-fixture/"
    assert record.names() == ["open inner", "close inner"]


class TestTheLifespanOverridesFixture:
    @pytest.fixture
    def lifespan_overrides(self) -> dict[Any, object]:
        return {ScopedContainer.outer: Value("fake", "/from-lifespan-overrides/")}

    async def test_it_replaces_a_request_resource_without_opening_it(
        self, runtime: Runtime, record: Record, asgi_client: Any
    ) -> None:
        response = await asgi_client.get("/nested/")
        assert response.json()["path"] == "/from-lifespan-overrides/"
        assert record.names() == ["open inner", "close inner"]


async def test_a_send_that_fails_as_asgi_2_4_says_is_a_disconnect(
    runtime: Runtime, record: Record
) -> None:
    """ASGI 2.4 servers raise ``OSError`` from ``send`` once the client is gone."""
    exchange = Exchange(LifespanHandler(runtime), "/stream/")
    sent = exchange.send

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            msg = "the client went away"
            raise OSError(msg)
        await sent(message)

    exchange.send = send  # type: ignore[method-assign]
    with pytest.raises(OSError, match="the client went away"):
        await exchange.run()
    assert isinstance(record.errors["outer"], RequestAborted)
    record.errors.clear()  # its traceback holds Django's frames, and the body file
    gc.collect()


async def test_a_sync_resource_in_an_async_view_opens_and_closes_in_the_requests_thread(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/async_view_sync_resource/")
    assert response.json()["open"] is True
    opened_in, closed_in = record.threads["sync"]
    assert opened_in == closed_in
    assert opened_in != response.json()["loop_thread"]
    assert record.names() == ["open sync", "close sync"]


async def test_nested_sync_resources_open_in_order_and_close_in_reverse(
    runtime: Runtime, record: Record
) -> None:
    async with lifespan_client(LifespanHandler(runtime)) as client:
        response = await client.get("/sync_nested/")
    assert response.text == "sync"
    assert record.names() == ["open sync", "open sync_child", "close sync_child", "close sync"]
