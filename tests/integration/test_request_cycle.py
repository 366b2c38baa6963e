"""The handler's request cycle starts the request's thread only when something needs it.

Django's ``ASGIHandler`` starts a thread for every request (asgiref makes one
executor, with one thread, for each request's ``ThreadSensitiveContext``), to send
``request_started`` and to close the response. Ours starts it when the request
runs sync code or when a receiver or a close needs it, and then does what Django
does in it. Each test counts the executors asgiref makes for requests, and checks
what ran where.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import io
import json
import sys
import tempfile
import threading
import types
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asgiref.sync
import pytest
from asgiref.sync import async_to_sync, markcoroutinefunction, sync_to_async
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.core.handlers.asgi import ASGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.dispatch import dispatcher
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from tests.conftest import Connect
from tests.docs.test_docs import BLOCK
from tests.lifespan_driver import WAIT, http_scope

pytestmark = pytest.mark.asyncio

RUN_PARALLEL = hasattr(dispatcher, "_run_parallel")
"""Django 6.1 runs async receivers in a task group (``_run_parallel``); before, gather."""

seen: dict[str, list[int]] = {}
"""What ran in which thread, by name."""


def note(name: str) -> None:
    seen.setdefault(name, []).append(threading.get_ident())


async def async_view(request: HttpRequest) -> HttpResponse:
    note("async view")
    return HttpResponse(b"async")


def sync_view(request: HttpRequest) -> HttpResponse:
    note("sync view")
    return HttpResponse(b"sync")


async def calls_sync_code(request: HttpRequest) -> HttpResponse:
    await sync_to_async(note)("sync_to_async")
    return HttpResponse(b"called")


async def file_view(request: HttpRequest) -> FileResponse:
    served = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it)
    served.write(b"file")
    served.seek(0)
    seen["file"] = [id(served)]
    FILES.append(served)
    return FileResponse(served)


async def upload_view(request: HttpRequest) -> HttpResponse:
    upload: Any = request.FILES["document"]
    FILES.append(upload)
    return HttpResponse(upload.read())


async def stream_view(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one;"
        yield b"two"

    return StreamingHttpResponse(chunks())


async def cache_view(request: HttpRequest) -> HttpResponse:
    cache.set("visits", 1)  # the request's context sets up the cache: it is closed after
    return HttpResponse(b"cached")


class ClosingCache(LocMemCache):
    """A cache whose ``close`` does something (as memcached's does)."""

    def close(self, **kwargs: Any) -> None:
        note("cache closed")


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def tagged(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request_id.get().encode())


async def never_answers(request: HttpRequest) -> HttpResponse:
    note("never answers")
    await asyncio.Event().wait()  # never set: the client leaves first
    return HttpResponse(b"never")  # pragma: no cover


FILES: list[Any] = []

urlpatterns = [
    path("async", async_view),
    path("sync", sync_view),
    path("sync-to-async", calls_sync_code),
    path("file", file_view),
    path("upload", upload_view),
    path("stream", stream_view),
    path("cache", cache_view),
    path("never", never_answers),
    path("tagged", tagged),
]


class ClosingMiddleware:
    """An async middleware that sets a closer of its own on the request."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        def close() -> None:
            note("request closer")

        request.close = close  # type: ignore[method-assign]
        response: HttpResponse = await self.get_response(request)
        return response


class SyncMiddleware(MiddlewareMixin):
    """Django's usual middleware shape: its hooks run in the request's thread."""

    def process_request(self, request: HttpRequest) -> None:
        note("sync middleware")


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    seen.clear()
    FILES.clear()
    yield
    for file in FILES:
        file.close()


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[ThreadPoolExecutor]:
    """The executors asgiref makes (one for each request that starts its thread)."""
    made: list[ThreadPoolExecutor] = []

    class Counted(ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(asgiref.sync, "ThreadPoolExecutor", Counted)
    return made


def handler(middleware: list[str] | None = None, **setting: Any) -> LifespanHandler:
    """Our handler for this module's views, with ``middleware`` and ``setting`` keys."""
    overrides = override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=middleware or [],
        LIFESPAN_CONTAINER={"CONTAINER": None, **setting},
    )
    overrides.enable()
    built = LifespanHandler(Runtime(None))
    built.override = overrides  # type: ignore[attr-defined]  # undone by the fixture
    return built


@pytest.fixture
def serve() -> Iterator[Callable[..., LifespanHandler]]:
    made: list[LifespanHandler] = []

    def make(middleware: list[str] | None = None, **setting: Any) -> LifespanHandler:
        made.append(handler(middleware, **setting))
        return made[-1]

    yield make
    for built in reversed(made):
        built.override.disable()  # type: ignore[attr-defined]


async def request(
    app: Any,  # an ASGIHandler, called as a server calls it
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
    leave: asyncio.Event | None = None,
) -> list[dict[str, Any]]:
    """One request; the client leaves when ``leave`` is set (else after the response)."""
    scope = {**http_scope(url), "method": method, "query_string": query}
    scope["headers"] = [*scope["headers"], *(headers or [])]
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> dict[str, Any]:
        for message in messages:
            return message
        await (leave or done).wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    async with asyncio.timeout(WAIT):
        await app(scope, receive, send)
    return sent


def body(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


class Received:
    """Async receivers of both signals: the fast path awaits them, as Django does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, tuple[str, ...]]] = []

    async def started(self, sender: object, **kwargs: Any) -> None:
        self.calls.append(("started", sender, tuple(sorted(kwargs))))

    async def finished(self, sender: object, **kwargs: Any) -> None:
        self.calls.append(("finished", sender, tuple(sorted(kwargs))))


@pytest.fixture
def received(connect: Connect) -> Received:
    receivers = Received()
    connect(request_started, receivers.started)
    connect(request_finished, receivers.finished)
    return receivers


async def test_an_async_view_starts_no_thread_and_the_signals_are_sent(
    serve: Callable[..., LifespanHandler], threads: list[Any], received: Received
) -> None:
    """The first request and the ones after it: no thread, and both signals reach
    their async receivers with Django's sender and arguments."""
    app = serve()
    for _ in range(5):
        assert body(await request(app, "/async")) == b"async"
    assert threads == []
    assert seen["async view"] == [threading.get_ident()] * 5
    assert (
        received.calls
        == [
            ("started", LifespanHandler, ("scope", "signal")),
            ("finished", LifespanHandler, ("signal",)),
        ]
        * 5
    )


async def test_with_the_fast_path_off_every_request_starts_its_thread(
    serve: Callable[..., LifespanHandler], threads: list[Any], received: Received
) -> None:
    app = serve(FAST_PATH=False)
    for _ in range(3):
        assert body(await request(app, "/async")) == b"async"
    assert len(threads) == 3
    assert [call[0] for call in received.calls] == ["started", "finished"] * 3


async def test_a_sync_middleware_starts_it_and_request_finished_runs_in_it(
    serve: Callable[..., LifespanHandler], threads: list[Any], connect: Connect
) -> None:
    """As in Django: one thread for the request's sync work, the middleware's and the
    ``request_finished`` receivers' (where ``close_old_connections`` closes them)."""
    connect(request_finished, lambda **_: note("request_finished"))
    app = serve([f"{__name__}.SyncMiddleware"])
    for _ in range(2):
        assert body(await request(app, "/async")) == b"async"
    assert len(threads) == 2  # a thread of its own for each request
    assert seen["request_finished"] == seen["sync middleware"]
    assert threading.get_ident() not in seen["sync middleware"]


async def test_a_sync_view_starts_it(
    serve: Callable[..., LifespanHandler], threads: list[Any], connect: Connect
) -> None:
    connect(request_finished, lambda **_: note("request_finished"))
    app = serve()
    assert body(await request(app, "/sync")) == b"sync"
    assert len(threads) == 1
    assert seen["request_finished"] == seen["sync view"] != [threading.get_ident()]


async def test_a_sync_to_async_call_of_the_view_starts_it(
    serve: Callable[..., LifespanHandler], threads: list[Any], connect: Connect
) -> None:
    connect(request_finished, lambda **_: note("request_finished"))
    app = serve()
    assert body(await request(app, "/sync-to-async")) == b"called"
    assert len(threads) == 1
    assert seen["request_finished"] == seen["sync_to_async"]


async def test_a_sync_receiver_it_does_not_know_runs_in_the_thread_as_in_django(
    serve: Callable[..., LifespanHandler], threads: list[Any], connect: Connect
) -> None:
    connect(request_started, lambda **_: note("request_started"))
    app = serve()
    assert body(await request(app, "/async")) == b"async"
    assert len(threads) == 1
    assert seen["request_started"] != [threading.get_ident()]


async def test_receivers_connected_later_are_seen_by_the_next_request(
    serve: Callable[..., LifespanHandler], threads: list[Any]
) -> None:
    """The receivers are checked at each request: a change is followed at once."""
    app = serve()
    await request(app, "/async")
    assert threads == []

    def receiver(**_: Any) -> None:
        note("late receiver")

    request_finished.connect(receiver)
    try:
        await request(app, "/async")
    finally:
        request_finished.disconnect(receiver)
    assert len(threads) == 1
    assert seen["late receiver"] != [threading.get_ident()]
    await request(app, "/async")
    assert len(threads) == 1  # gone again: no thread


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous")  # 5.2
async def test_a_file_response_closes_its_file_in_the_thread(
    serve: Callable[..., LifespanHandler], threads: list[Any]
) -> None:
    app = serve()
    assert body(await request(app, "/file")) == b"file"
    assert len(threads) == 1
    assert FILES[0].closed


async def test_uploaded_files_close_in_the_thread(
    serve: Callable[..., LifespanHandler], threads: list[Any]
) -> None:
    boundary = b"boundary"
    form = (
        b"--boundary\r\n"
        b'Content-Disposition: form-data; name="document"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"uploaded\r\n"
        b"--boundary--\r\n"
    )
    headers = [
        (b"content-type", b"multipart/form-data; boundary=" + boundary),
        (b"content-length", str(len(form)).encode()),
    ]
    app = serve()
    sent = await request(app, "/upload", method="POST", body=form, headers=headers)
    assert body(sent) == b"uploaded"
    assert len(threads) == 1
    assert FILES[0].closed


async def test_an_async_stream_needs_no_thread(
    serve: Callable[..., LifespanHandler], threads: list[Any], received: Received
) -> None:
    app = serve()
    assert body(await request(app, "/stream")) == b"one;two"
    assert threads == []
    assert [call[0] for call in received.calls] == ["started", "finished"]


async def test_a_cache_whose_close_does_nothing_needs_no_thread(
    serve: Callable[..., LifespanHandler], threads: list[Any]
) -> None:
    app = serve()
    assert body(await request(app, "/cache")) == b"cached"  # local memory
    assert threads == []


async def test_a_cache_with_a_close_of_its_own_is_closed_as_django_closes_it(
    serve: Callable[..., LifespanHandler], threads: list[Any]
) -> None:
    """``close_caches`` has work when the request's context set up such a cache
    (memcached's): it runs where Django runs it, if Django sees the cache at all
    (Django 5.2 runs the view in a task of its own, whose cache it does not see)."""
    backend = {"default": {"BACKEND": f"{__name__}.ClosingCache"}}
    closed: dict[str, list[int]] = {}
    ours = functools.partial(LifespanHandler, Runtime(None))
    for name, make in (("vanilla", ASGIHandler), ("ours", ours)):
        with override_settings(
            CACHES=backend,
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            LIFESPAN_CONTAINER={"CONTAINER": None},
        ):
            app = make()
            before = len(threads)
            assert body(await request(app, "/cache")) == b"cached"
            closed[name] = seen.pop("cache closed", [])  # before the setting's end closes it
        seen.pop("cache closed", None)  # what the setting's end closed
        assert len(threads) - before == (1 if name == "vanilla" else len(closed[name]))
    assert len(closed["ours"]) == len(closed["vanilla"])
    assert threading.get_ident() not in closed["ours"]


async def test_a_client_that_leaves_still_gets_request_finished_sent(
    serve: Callable[..., LifespanHandler], threads: list[Any], received: Received
) -> None:
    app = serve()
    leave = asyncio.Event()
    served = asyncio.ensure_future(request(app, "/never", leave=leave))
    async with asyncio.timeout(WAIT):
        while "never answers" not in seen:
            await asyncio.sleep(0)
    leave.set()
    assert await served == []
    assert threads == []
    assert [call[0] for call in received.calls] == ["started", "finished"]


async def test_a_bad_request_is_answered_and_closed_without_a_thread(
    serve: Callable[..., LifespanHandler], threads: list[Any], received: Received
) -> None:
    """A request Django cannot build (a query string that is not UTF-8) gets Django's
    400, then ``request_finished`` (sent by the error response, as Django's is)."""
    app = serve()
    sent = await request(app, "/async", query=b"q=\xff")
    assert sent[0]["status"] == 400
    assert body(sent) == b""  # Django's HttpResponseBadRequest()
    assert threads == []
    assert received.calls == [
        ("started", LifespanHandler, ("scope", "signal")),
        ("finished", None, ("signal",)),
    ]
    assert "async view" not in seen


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # a sync test in this module
def test_the_setting_is_checked(settings: Any) -> None:
    from django.core import checks  # noqa: PLC0415

    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, "FAST_PATH": "yes"}
    [found] = [m for m in checks.run_checks() if str(m.id).endswith("E017")]
    assert "FAST_PATH" in found.msg
    assert "'yes'" in found.msg


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # a sync test in this module
@pytest.mark.parametrize(
    ("middleware", "setting", "expected"),
    [
        (
            [],
            {},
            (
                "Request path: no middleware or receiver makes requests start a thread. A "
                "request starts one for sync work of its own: a sync view, a sync_to_async "
                "call (the ORM's async methods, middleware that calls it), a "
                "TemplateResponse, a FileResponse, a sync iterator, uploaded files."
            ),
        ),
        (
            ["django.middleware.security.SecurityMiddleware", f"{__name__}.SyncMiddleware"],
            {},
            (
                "Request path: every request starts a thread (Django's, for the request's "
                "sync work), because:\n"
                "  middleware 'django.middleware.security.SecurityMiddleware' runs its "
                "process_request and process_response in it\n"
                f"  middleware '{__name__}.SyncMiddleware' runs its process_request in it\n"
                "Async views need no thread once these are async or gone; Django's own "
                "middleware are sync (see Performance in the docs)."
            ),
        ),
        (
            [],
            {"FAST_PATH": False},
            (
                "Request path: Django's own (FAST_PATH is False): every request starts a "
                "thread for its sync work."
            ),
        ),
    ],
)
def test_the_resources_command_says_what_makes_requests_start_a_thread(
    settings: Any, middleware: list[str], setting: dict[str, Any], expected: str
) -> None:
    settings.MIDDLEWARE = middleware
    settings.LIFESPAN_CONTAINER = {**settings.LIFESPAN_CONTAINER, **setting}
    out = io.StringIO()
    call_command("resources", stdout=out)
    assert out.getvalue().rstrip().endswith(expected)


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # a sync test in this module
def test_the_resources_command_names_a_sync_receiver_it_does_not_know(
    settings: Any, connect: Connect
) -> None:
    def audit(**_: Any) -> None:
        """A project's own receiver."""

    connect(request_started, audit)
    settings.MIDDLEWARE = []
    out = io.StringIO()
    call_command("resources", "--json", stdout=out)
    assert json.loads(out.getvalue())["request_path"] == {
        "fast_path": True,
        "thread_per_request": True,
        "causes": [
            (
                "request_started receiver "
                f"'{__name__}.test_the_resources_command_names_a_sync_receiver_it_does_not_know."
                "<locals>.audit'"
            )
        ],
    }


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # a sync test in this module
def test_a_request_for_a_sync_caller_is_djangos_and_its_receivers_run_in_that_thread(
    serve: Callable[..., LifespanHandler],
) -> None:
    """Called through ``async_to_sync``, the request's sync work runs in the caller's
    thread, which has connections: ``request_started``'s ``reset_queries`` clears
    this thread's query log, as under Django's handler.

    The caller is a thread of the test's own: asgiref leaves its marks on a thread
    that ran such work (``SyncToAsync.threadlocal``).
    """
    from django.db import connection  # noqa: PLC0415

    app = serve()
    found: dict[str, Any] = {}

    def caller() -> None:
        connection.ensure_connection()
        connection.queries_log.append({"sql": "SELECT 1", "time": "0.000"})
        try:
            found["body"] = body(async_to_sync(request)(app, "/async"))
            found["log"] = list(connection.queries_log)
        finally:  # Django keeps an in-memory database open; this thread's copy goes
            connection.connection.close()
            connection.connection = None

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(WAIT)
    assert found == {"body": b"async", "log": []}


async def test_the_performance_pages_async_middleware_keeps_the_path_free_of_the_thread(
    serve: Callable[..., LifespanHandler], threads: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's ``Timing`` middleware, as written: its header, and no thread."""
    page = (Path(__file__).parents[2] / "docs" / "explanation" / "performance.md").read_text()
    [example] = [block for block in BLOCK.findall(page) if "class Timing" in block]
    module = types.ModuleType("myproject_middleware")
    exec(compile(example, "performance.md", "exec"), module.__dict__)  # noqa: S102
    monkeypatch.setitem(sys.modules, "myproject_middleware", module)
    app = serve(["myproject_middleware.Timing"])
    for _ in range(3):
        sent = await request(app, "/async")
        headers = {name.lower(): value for name, value in sent[0]["headers"]}
        assert headers[b"server-timing"].startswith(b"view;dur=")
    assert threads == []


async def test_a_weak_receiver_dies_with_its_owner(
    serve: Callable[..., LifespanHandler], threads: list[Any]
) -> None:
    """A bound method connected weakly: once its owner is gone, it is not called (the
    request path keeps no receiver alive)."""
    calls: list[str] = []

    class Owner:
        async def started(self, sender: object, **kwargs: Any) -> None:
            calls.append("started")

    owner = Owner()
    request_started.connect(owner.started)  # weak, Django's default
    app = serve()
    await request(app, "/async")
    assert calls == ["started"]
    del owner
    gc.collect()
    await request(app, "/async")
    assert calls == ["started"]
    assert threads == []


async def test_a_context_variable_set_by_an_async_receiver_reaches_the_view_as_in_django(
    serve: Callable[..., LifespanHandler], connect: Connect
) -> None:
    """Django 6.1 runs async receivers in one context that the handler gets back (the
    view sees what ``request_started``'s receiver set); Django 5.2 and 6.0 do not."""

    async def tag(sender: object, **kwargs: Any) -> None:
        request_id.set("set by the receiver")

    connect(request_started, tag)
    ours = serve()
    vanilla = ASGIHandler()  # under the same settings
    seen_by = {
        name: body(await request(app, "/tagged"))
        for name, app in (("ours", ours), ("vanilla", vanilla))
    }
    assert seen_by["ours"] == seen_by["vanilla"]
    assert seen_by["ours"] == (b"set by the receiver" if RUN_PARALLEL else b"unset")


async def test_async_receivers_that_fail_fail_the_request_as_in_django(
    serve: Callable[..., LifespanHandler], connect: Connect
) -> None:
    """Two failing receivers: Django 6.1 raises both (an exception group), 5.2 and 6.0
    the first.

    (Django 5.2's own handler is not run beside it: it leaves the request body's file
    open when a receiver fails.)
    """

    async def fails(sender: object, **kwargs: Any) -> None:
        raise LookupError("first")

    async def fails_too(sender: object, **kwargs: Any) -> None:
        raise KeyError("second")

    connect(request_started, fails)
    connect(request_started, fails_too)
    expected = ExceptionGroup if RUN_PARALLEL else LookupError
    with pytest.raises(expected) as raised:
        await request(serve(), "/async")
    if isinstance(raised.value, ExceptionGroup):
        assert [type(e) for e in raised.value.exceptions] == [LookupError, KeyError]


async def test_a_closer_set_on_the_request_runs_in_the_thread_as_in_django(
    serve: Callable[..., LifespanHandler], threads: list[Any]
) -> None:
    """A middleware that replaces ``request.close``: Django calls that closer in the
    request's thread, where it may use the ORM; so does the handler."""
    app = serve([f"{__name__}.ClosingMiddleware"])
    assert body(await request(app, "/async")) == b"async"
    assert len(threads) == 1
    assert seen["request closer"] != [threading.get_ident()]


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # a sync test in this module
def test_the_resources_command_gives_json_without_a_container(
    settings: Any, install_container: Callable[[Any], Runtime]
) -> None:
    install_container(None)
    settings.MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
    out = io.StringIO()
    call_command("resources", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "container": None,
        "request_path": {
            "fast_path": True,
            "thread_per_request": True,
            "causes": [
                (
                    "middleware 'django.middleware.common.CommonMiddleware' runs its "
                    "process_request and process_response in it"
                )
            ],
        },
    }
