"""The lifespan shutdown closes the resources after the requests still using them.

uvicorn (and gunicorn's worker with it) cancels the requests still running at its
graceful timeout and starts the lifespan shutdown at once, without waiting for them
to unwind. A view cancelled in a query still talks to the database (psycopg sends
the cancel and gives the connection back): closing the pool under it, then ending
the process, leaves the query running in PostgreSQL. Each test drives the handler
as such a server does, with events that the test sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import django
import pytest
import pytest_asyncio
from dependency_injector import containers, providers
from django.http import HttpRequest, HttpResponse
from django.urls import path

from lifespan_container import get_container
from lifespan_container._settings import request_cleanup_limit
from lifespan_container.exceptions import ShutdownFailedError
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.signals import asgi_shutdown
from lifespan_container.testing import use_container
from tests.clock import LoopClock, until
from tests.conftest import Connect
from tests.lifespan_driver import (
    SHUTDOWN,
    SHUTDOWN_COMPLETE,
    STARTUP_COMPLETE,
    WAIT,
    Exchange,
    Lifespan,
    http_scope,
)

pytestmark = pytest.mark.asyncio

SHUTDOWN_TIMEOUT = 3600.0  # no step of these tests could reach it, or its half


class Database:
    """Stands for a pool: what happened to it and to the query of the view."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.querying = asyncio.Event()
        self.unwinding = asyncio.Event()
        self.answer = asyncio.Event()
        """Set by the test: the database answered the query's cancel."""
        self.never = asyncio.Event()
        """Never set: the query that outlasts the server's patience."""


async def database(state: Database) -> AsyncIterator[Database]:
    state.events.append("pool opened")
    yield state
    state.events.append("pool closed")


class Container(containers.DeclarativeContainer):
    state = providers.Object(Database())
    pool = providers.Resource(database, state=state)


async def query(request: HttpRequest) -> HttpResponse:
    """A query that never ends by itself; cancelled, it cancels in the database first."""
    pool = get_container().pool()
    pool.events.append("query sent")
    pool.querying.set()
    try:
        await pool.never.wait()
    except asyncio.CancelledError:
        pool.events.append("query cancelled")
        pool.unwinding.set()
        await pool.answer.wait()  # the round trip of the cancel, with the pool open
        pool.events.append(f"connection given back ({pool.events[-2]!r} before)")
        raise
    return HttpResponse("never")


async def quick(request: HttpRequest) -> HttpResponse:
    return HttpResponse("quick")


async def stubborn(request: HttpRequest) -> HttpResponse:
    """A view that ignores its cancellation until the test answers."""
    pool = get_container().pool()
    pool.querying.set()
    try:
        await pool.never.wait()
    except asyncio.CancelledError:
        pool.unwinding.set()
        await pool.answer.wait()
        raise
    return HttpResponse("never")  # pragma: no cover


urlpatterns = [path("query/", query), path("quick/", quick), path("stubborn/", stubborn)]


@pytest_asyncio.fixture
async def pool(settings: Any) -> AsyncIterator[tuple[Runtime, Database]]:
    settings.ROOT_URLCONF = __name__
    settings.LIFESPAN_CONTAINER = {
        **settings.LIFESPAN_CONTAINER,
        "SHUTDOWN_TIMEOUT": SHUTDOWN_TIMEOUT,
    }
    state = Database()
    container = Container()
    container.state.override(providers.Object(state))
    with use_container(container) as runtime:
        yield runtime, state
    state.answer.set()  # a test that failed half way leaves no view waiting


async def waits_for_requests(caplog: pytest.LogCaptureFixture, state: Database) -> None:
    """Until the shutdown says it waits for the requests, or the pool closed (it did not)."""
    await until(
        lambda: "request(s) to end" in caplog.text or "pool closed" in state.events,
        "the shutdown waits for the requests, or closes the pool",
    )


async def serving_a_query(
    pool: tuple[Runtime, Database], caplog: pytest.LogCaptureFixture, path: str = "/query/"
) -> tuple[Lifespan, asyncio.Task[None]]:
    """The lifespan started (INFO logged) and a request to the query view on its way."""
    caplog.set_level("INFO", logger="lifespan_container")
    handler = LifespanHandler(pool[0])
    lifespan = Lifespan(handler)
    assert await lifespan.startup() == STARTUP_COMPLETE
    return lifespan, Exchange(handler, path).run()


async def end(request: asyncio.Task[None], state: Database) -> None:
    """End a request the test left running: cancelled, its query's cancel answered."""
    request.cancel()
    state.answer.set()
    async with asyncio.timeout(WAIT):
        await asyncio.wait({request})


async def test_a_request_the_server_cancelled_unwinds_before_the_pool_closes(
    pool: tuple[Runtime, Database], caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn's graceful timeout: cancel the request, then start the shutdown at once.

    The view's cancel still uses the pool; the pool closes after it. On Django 5.2
    the view runs in a task that Django leaves running when the request is
    cancelled: it is cancelled with it.
    """
    state = pool[1]
    lifespan, request = await serving_a_query(pool, caplog)
    async with asyncio.timeout(WAIT):
        await state.querying.wait()
        request.cancel()  # the server's graceful timeout passed
        await state.unwinding.wait()

    await lifespan.send(SHUTDOWN)
    await waits_for_requests(caplog, state)
    assert "pool closed" not in state.events
    state.answer.set()
    assert await lifespan.answer() == SHUTDOWN_COMPLETE
    await lifespan.finish()

    assert state.events == [
        "pool opened",
        "query sent",
        "query cancelled",
        "connection given back ('query sent' before)",
        "pool closed",
    ]
    assert request.cancelled()


async def test_a_request_the_server_did_not_cancel_gets_half_the_shutdown_timeout(
    pool: tuple[Runtime, Database], caplog: pytest.LogCaptureFixture, clock: LoopClock
) -> None:
    """The wait is bounded: the pool closes at half of ``SHUTDOWN_TIMEOUT``, with a
    warning that names the server setting that cancels requests first."""
    state = pool[1]
    lifespan, request = await serving_a_query(pool, caplog)
    async with asyncio.timeout(WAIT):
        await state.querying.wait()

    await lifespan.send(SHUTDOWN)
    await waits_for_requests(caplog, state)
    assert "pool closed" not in state.events
    clock.advance(SHUTDOWN_TIMEOUT / 2)
    assert await lifespan.answer() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert state.events == ["pool opened", "query sent", "pool closed"]
    [warning] = [record for record in caplog.records if record.levelname == "WARNING"]
    assert warning.getMessage() == (
        "1 request(s) still ran at the end of the wait for them (1800 s, half of "
        'LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (3600 s)); the resources close under '
        "them. A server's graceful timeout (uvicorn "
        "--timeout-graceful-shutdown, gunicorn --graceful-timeout) cancels requests "
        "before the shutdown."
    )

    await end(request, state)  # the request is the test's to end
    assert state.events[-1] == "connection given back ('pool closed' before)"


async def test_a_shutdown_without_requests_in_flight_does_not_wait(
    pool: tuple[Runtime, Database], caplog: pytest.LogCaptureFixture
) -> None:
    """Requests that ended are forgotten: the shutdown neither waits nor says it does."""
    state = pool[1]
    lifespan, request = await serving_a_query(pool, caplog)
    async with asyncio.timeout(WAIT):
        await state.querying.wait()
        request.cancel()
        state.answer.set()
        await asyncio.wait({request})
    assert not pool[0].requests

    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
    assert "request(s)" not in caplog.text
    assert state.events[-1] == "pool closed"


async def test_the_wait_and_the_receivers_share_their_half_the_resources_keep_theirs(
    pool: tuple[Runtime, Database],
    caplog: pytest.LogCaptureFixture,
    clock: LoopClock,
    connect: Connect,
) -> None:
    """A request that outlasts the wait for it, then an ``asgi_shutdown`` receiver that
    never ends: the receiver gets what the wait left of the half (nothing), and the
    pool closes in the other half, without waiting out a second one."""
    state = pool[1]

    async def stuck(**_: Any) -> None:
        await state.never.wait()

    connect(asgi_shutdown, stuck)
    lifespan, request = await serving_a_query(pool, caplog)
    async with asyncio.timeout(WAIT):
        await state.querying.wait()

    await lifespan.send(SHUTDOWN)
    await waits_for_requests(caplog, state)
    clock.advance(SHUTDOWN_TIMEOUT / 2)  # the half passes: the wait ends, and the receivers'
    answer = await lifespan.answer()  # not another half later
    with pytest.raises(ShutdownFailedError):  # the server logs it
        await lifespan.finish()
    assert state.events[-1] == "pool closed"
    assert answer["type"] == "lifespan.shutdown.failed"
    assert answer["message"] == (
        "Shutdown finished with errors: receiver "
        "'tests.integration.test_shutdown_waits_for_requests."
        "test_the_wait_and_the_receivers_share_their_half_the_resources_keep_theirs."
        "<locals>.stuck' did not finish within what the wait for the requests left of "
        '1800 s, half of LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (3600 s).'
    )

    await end(request, state)  # the request is the test's to end


async def test_a_request_served_within_another_in_its_task_leaves_the_outer_one_counted(
    pool: tuple[Runtime, Database], caplog: pytest.LogCaptureFixture
) -> None:
    """An app that calls the handler again in the task of a request (here, while the
    outer request's body is read): the shutdown still waits for the outer one."""
    runtime, state = pool
    handler = LifespanHandler(runtime)
    lifespan = Lifespan(handler)
    assert await lifespan.startup() == STARTUP_COMPLETE
    outer, inner = Exchange(handler, "/query/"), Exchange(handler, "/quick/")
    receive_outer = outer.receive

    async def receive() -> dict[str, Any]:
        if not inner.sent:
            app: Any = handler  # called as a server calls it
            await app(http_scope("/quick/"), inner.receive, inner.send)
        return await receive_outer()

    outer.receive = receive  # type: ignore[method-assign]
    request = outer.run()
    async with asyncio.timeout(WAIT):
        await state.querying.wait()
    assert inner.sent[0]["status"] == 200
    assert runtime.requests == {request: 1}

    await end(request, state)
    assert not runtime.requests
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()


@pytest.mark.skipif(
    django.VERSION >= (6, 1), reason="Django 6.1 runs the view in the server's task"
)
async def test_a_view_that_ignores_its_cancellation_is_waited_for_within_the_cleanup_limit(
    pool: tuple[Runtime, Database], caplog: pytest.LogCaptureFixture, clock: LoopClock
) -> None:
    """Django 5.2: the cancelled request cancels its view, and gives up waiting for it
    at ``REQUEST_CLEANUP_TIMEOUT``, with a warning naming the request."""
    runtime, state = pool
    lifespan, request = await serving_a_query(pool, caplog, "/stubborn/")
    async with asyncio.timeout(WAIT):
        await state.querying.wait()
        request.cancel()
        await state.unwinding.wait()
    # The request cancelled the view and waits for it (its timer runs from the cancel).
    [view] = runtime.request_views.values()
    assert not request.done()
    clock.advance(request_cleanup_limit().seconds)
    async with asyncio.timeout(WAIT):
        await asyncio.wait({request})
    assert request.cancelled()
    assert not view.done()
    assert (
        "The view of the cancelled request '/stubborn/' ignored its cancellation until the "
        'end of LIFESPAN_CONTAINER["REQUEST_CLEANUP_TIMEOUT"]'
    ) in caplog.text
    state.answer.set()  # the view ends after all
    async with asyncio.timeout(WAIT):
        await asyncio.wait({view})
    assert await lifespan.shutdown() == SHUTDOWN_COMPLETE
    await lifespan.finish()
