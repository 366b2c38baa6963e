"""A container with request-scoped resources, its views and URLconf, for the tests.

Every resource records what happened to it in the :class:`Record` the container
is given, so the tests can assert order, thread and the exception each close saw.
The views are made per test (:func:`make_views`), so that the ``@inject``
registry forgets them after it.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import markcoroutinefunction
from dependency_injector import containers, providers
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from lifespan_container import CurrentRequest, Provide, RequestResource, inject


class Record:
    """What the request-scoped resources did, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.errors: dict[str, BaseException | None] = {}
        self.threads: dict[str, tuple[int, int]] = {}
        self.closed = asyncio.Event()
        self.waiting = asyncio.Event()
        """Set by a view (or a stream) that waits for :attr:`release`."""
        self.release = asyncio.Event()
        """Never set by the tests: what waits for it ends only by a disconnect."""
        self.cleanup_started = asyncio.Event()

    def names(self) -> list[str]:
        return [" ".join(event) for event in self.events]


class Value:
    def __init__(self, name: str, path: str, *parts: Any) -> None:
        self.name = name
        self.path = path
        self.parts = parts
        self.open = True


async def outer(record: Record, request: HttpRequest) -> AsyncIterator[Value]:
    record.events.append(("open", "outer"))
    value = Value("outer", request.path)
    try:
        yield value
    except BaseException as error:
        record.errors["outer"] = error
        raise
    else:
        record.errors["outer"] = None
    finally:
        value.open = False
        record.events.append(("close", "outer"))
        record.closed.set()


async def inner(record: Record, outer: Value) -> AsyncIterator[Value]:
    record.events.append(("open", "inner"))
    value = Value("inner", outer.path, outer)
    try:
        yield value
    except BaseException as error:
        record.errors["inner"] = error
        raise
    else:
        record.errors["inner"] = None
    finally:
        value.open = False
        record.events.append(("close", "inner"))


def sync_resource(record: Record) -> Iterator[Value]:
    opened_in = threading.get_ident()
    record.events.append(("open", "sync"))
    value = Value("sync", "")
    try:
        yield value
    except BaseException as error:
        record.errors["sync"] = error
        raise
    else:
        record.errors["sync"] = None
    finally:
        value.open = False
        record.threads["sync"] = (opened_in, threading.get_ident())
        record.events.append(("close", "sync"))


async def plain(record: Record) -> AsyncIterator[Value]:
    record.events.append(("open", "plain"))
    value = Value("plain", "")
    try:
        yield value
    finally:
        value.open = False
        record.events.append(("close", "plain"))


async def waits_to_open(record: Record) -> AsyncIterator[Value]:
    """Waits once before its value is ready (as a pool checkout does)."""
    record.events.append(("open", "waits_to_open"))
    await asyncio.sleep(0)  # a suspension point, not a delay
    value = Value("waits_to_open", "")
    try:
        yield value
    finally:
        record.events.append(("close", "waits_to_open"))


class Auditor:
    """A request-scoped Factory's product that needs only the request."""

    def __init__(self, request: HttpRequest) -> None:
        self.path = request.path


async def hangs(record: Record) -> AsyncIterator[str]:
    record.events.append(("open", "hangs"))
    try:
        yield "hangs"
    finally:
        record.cleanup_started.set()
        try:
            await record.release.wait()  # never set: only the cleanup time limit ends it
        finally:
            record.events.append(("close", "hangs"))


async def breaks(record: Record, outer: Value) -> AsyncIterator[str]:
    record.events.append(("open", "breaks"))
    yield "breaks"
    record.events.append(("close", "breaks"))
    msg = "the cleanup failed"
    raise RuntimeError(msg)


def sync_child(record: Record, parent: Value) -> Iterator[Value]:
    record.events.append(("open", "sync_child"))
    try:
        yield Value("sync_child", "", parent)
    finally:
        record.events.append(("close", "sync_child"))


class ScopedContainer(containers.DeclarativeContainer):
    record = providers.Dependency(instance_of=Record)
    request = CurrentRequest()
    outer = RequestResource(outer, record=record, request=request)
    inner = RequestResource(inner, record=record, outer=outer)
    sync = RequestResource(sync_resource, record=record)
    pair = providers.Factory(tuple, providers.List(inner, outer))
    plain = RequestResource(plain, record=record)
    waits_to_open = RequestResource(waits_to_open, record=record)
    sync_child = RequestResource(sync_child, record=record, parent=sync)
    auditor = providers.Factory(Auditor, request=request)
    repo = providers.Factory(tuple, providers.List(outer))
    hangs = RequestResource(hangs, record=record)
    breaks = RequestResource(breaks, record=record, outer=outer)


def make_container(record: Record) -> ScopedContainer:
    return ScopedContainer(record=providers.Object(record))


urlpatterns: list[Any] = []


class FailsAfterTheView:
    """A middleware that raises once the view returned, on ``/fails_after_the_view/``."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> Any:
        response = await self.get_response(request)
        if request.path == "/fails_after_the_view/":
            msg = "the middleware failed"
            raise LookupError(msg)
        return response


def make_views() -> list[Any]:
    """The views, routed under their names; call it in a fixture that restores the registry."""

    @inject
    async def nested(
        request: HttpRequest,
        inner: Value = Provide[ScopedContainer.inner],
        outer: Value = Provide[ScopedContainer.outer],
        pair: tuple[Value, Value] = Provide[ScopedContainer.pair],
    ) -> JsonResponse:
        same = inner.parts[0] is outer and pair[0] is inner and pair[1] is outer
        return JsonResponse({"same": same, "path": outer.path, "id": id(outer)})

    @inject
    async def fails(request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]) -> Any:
        msg = "the view failed"
        raise ValueError(msg)

    @inject
    async def stream(request: HttpRequest, inner: Value = Provide[ScopedContainer.inner]) -> Any:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(3):
                yield f"{index}:{inner.open};".encode()
                await asyncio.sleep(0)

        return StreamingHttpResponse(chunks())

    @inject
    async def stream_sync_iterator(
        request: HttpRequest, inner: Value = Provide[ScopedContainer.inner]
    ) -> Any:
        def chunks() -> Iterator[bytes]:
            for index in range(3):
                yield f"{index}:{inner.open};".encode()

        return StreamingHttpResponse(chunks())

    @inject
    def sync_view(request: HttpRequest, value: Value = Provide[ScopedContainer.sync]) -> Any:
        return JsonResponse({"thread": threading.get_ident(), "open": value.open})

    @inject
    async def fails_after_the_view(
        request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]
    ) -> Any:
        return HttpResponse("fine")

    @inject
    async def file(request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]) -> Any:
        return FileResponse(io.BytesIO(b"x" * 100_000), filename="data.bin")

    async def one_value_for_two_tasks(request: HttpRequest) -> Any:
        @inject
        async def first(value: Value = Provide[ScopedContainer.waits_to_open]) -> Value:
            return value

        @inject
        async def second(value: Value = Provide[ScopedContainer.waits_to_open]) -> Value:
            return value

        one, two = await asyncio.gather(first(), second())
        return JsonResponse({"same": one is two})

    async def catches(request: HttpRequest) -> Any:
        @inject
        async def lookup(
            request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]
        ) -> str:
            msg = "not there"
            raise KeyError(msg)

        try:
            await lookup(request)
        except KeyError:
            return HttpResponse("handled")
        return HttpResponse("unreachable")  # pragma: no cover

    @inject
    def audits(request: HttpRequest, auditor: Auditor = Provide[ScopedContainer.auditor]) -> Any:
        return HttpResponse(auditor.path)

    @inject
    async def uses_repo(request: HttpRequest, repo: Any = Provide[ScopedContainer.repo]) -> Any:
        return HttpResponse(repr(repo))

    @inject
    async def async_view_sync_resource(
        request: HttpRequest, value: Value = Provide[ScopedContainer.sync]
    ) -> Any:
        return JsonResponse({"loop_thread": threading.get_ident(), "open": value.open})

    @inject
    def sync_nested(
        request: HttpRequest, child: Value = Provide[ScopedContainer.sync_child]
    ) -> Any:
        return HttpResponse(child.parts[0].name)

    @api_view(["GET"])
    @inject
    def drf_view(request: Request, value: Value = Provide[ScopedContainer.sync]) -> Any:
        return Response({"open": value.open})

    @inject
    def sync_fails(request: HttpRequest, value: Value = Provide[ScopedContainer.sync]) -> Any:
        msg = "the sync view failed"
        raise ValueError(msg)

    @inject
    def sync_stream(request: HttpRequest, value: Value = Provide[ScopedContainer.sync]) -> Any:
        def chunks() -> Iterator[bytes]:
            for index in range(3):
                yield f"{index}:{value.open};".encode()

        return StreamingHttpResponse(chunks())

    @inject
    def sync_view_async_resource(
        request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]
    ) -> Any:
        return HttpResponse(outer.path)

    @inject
    async def waits(
        request: HttpRequest,
        outer: Value = Provide[ScopedContainer.outer],
        record: Record = Provide[ScopedContainer.record],
    ) -> Any:
        record.waiting.set()
        await record.release.wait()  # never set: only a disconnect ends it
        return HttpResponse()  # pragma: no cover

    @inject
    async def stream_waits(
        request: HttpRequest,
        outer: Value = Provide[ScopedContainer.outer],
        record: Record = Provide[ScopedContainer.record],
    ) -> Any:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            record.waiting.set()
            await record.release.wait()  # never set: only a disconnect ends it
            yield b"never"  # pragma: no cover

        return StreamingHttpResponse(chunks())

    @inject
    async def stream_fails(
        request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]
    ) -> Any:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            msg = "the stream failed"
            raise OSError(msg)

        return StreamingHttpResponse(chunks())

    @inject
    async def hanging_cleanup(
        request: HttpRequest, value: str = Provide[ScopedContainer.hangs]
    ) -> Any:
        return HttpResponse(value)

    @inject
    async def failing_cleanup(
        request: HttpRequest, value: str = Provide[ScopedContainer.breaks]
    ) -> Any:
        return HttpResponse(value)

    views = [
        nested,
        fails,
        stream,
        stream_sync_iterator,
        fails_after_the_view,
        file,
        one_value_for_two_tasks,
        async_view_sync_resource,
        sync_nested,
        catches,
        audits,
        uses_repo,
        sync_view,
        sync_fails,
        sync_stream,
        sync_view_async_resource,
        waits,
        stream_waits,
        stream_fails,
        hanging_cleanup,
        failing_cleanup,
    ]
    urlpatterns[:] = [path(f"{view.__name__}/", view) for view in views]  # type: ignore[call-overload]
    urlpatterns.append(path("drf_view/", drf_view))
    return views
