"""A container with request-scoped resources, its views and URLconf, for the tests.

Every resource records what happened to it in the :class:`Record` the container
is given, so the tests can assert order, thread and the exception each close saw.
The views are made per test (:func:`make_views`), so that the ``@inject``
registry forgets them after it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from dependency_injector import containers, providers
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from lifespan_container import CurrentRequest, Provide, RequestResource, inject


class Record:
    """What the request-scoped resources did, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.errors: dict[str, BaseException | None] = {}
        self.threads: dict[str, tuple[int, int]] = {}
        self.closed = asyncio.Event()
        self.release = asyncio.Event()
        """Set by a test to let a view that waits for it go on."""

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


class ScopedContainer(containers.DeclarativeContainer):
    record = providers.Dependency(instance_of=Record)
    request = CurrentRequest()
    outer = RequestResource(outer, record=record, request=request)
    inner = RequestResource(inner, record=record, outer=outer)
    sync = RequestResource(sync_resource, record=record)
    pair = providers.Factory(tuple, providers.List(inner, outer))


def make_container(record: Record) -> ScopedContainer:
    return ScopedContainer(record=providers.Object(record))


urlpatterns: list[Any] = []


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
    def sync_view_async_resource(
        request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]
    ) -> Any:
        return HttpResponse(outer.path)

    @inject
    async def slow(request: HttpRequest, outer: Value = Provide[ScopedContainer.outer]) -> Any:
        record: Record = ScopedContainer.record  # placeholder, replaced below
        del record
        await asyncio.Event().wait()  # never set: only a disconnect ends it
        return HttpResponse()  # pragma: no cover

    views = [nested, fails, stream, stream_sync_iterator, sync_view, sync_view_async_resource, slow]
    urlpatterns[:] = [path(f"{view.__name__}/", view) for view in views]
    return views
