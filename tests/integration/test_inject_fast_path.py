"""@inject's fast path after its markers are resolved: it follows every change of state.

A view resolves its markers on its first call and then takes an open resource's
value from the guard without calling the provider. These tests resolve first, then
change what the view must see: a stop and a new start, an override put on and
taken off, another loop or thread, another container.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from dependency_injector import containers, providers

from lifespan_container import Provide, inject
from lifespan_container.exceptions import ResourcesNotStartedError, WrongEventLoopError
from lifespan_container.runtime import Runtime
from lifespan_container.testing import use_container

pytestmark = pytest.mark.asyncio


class Client:
    """A value that each start opens anew."""


async def async_client() -> AsyncIterator[Client]:
    yield Client()


def sync_client() -> Iterator[Client]:
    yield Client()


class Resources(containers.DeclarativeContainer):
    http = providers.Resource(async_client)
    files = providers.Resource(sync_client)


@inject
async def async_view(http: Client = Provide[Resources.http]) -> Client:
    return http


@inject
def sync_view(files: Client = Provide[Resources.files]) -> Client:
    return files


@inject
def sync_view_of_the_async_resource(http: Client = Provide[Resources.http]) -> Client:
    return http


async def start(runtime: Runtime) -> Any:
    """Open ``runtime``'s resources; its container (an instance of :class:`Resources`)."""
    assert runtime.lifecycle is not None
    assert await runtime.lifecycle.start() == []
    return runtime.container


async def stop(runtime: Runtime) -> None:
    assert runtime.lifecycle is not None
    assert await runtime.lifecycle.stop(10) == []


def in_new_thread(function: Callable[[], object]) -> object:
    """What ``function`` returns or raises in a new thread."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    return outcome[0]


async def test_a_resolved_view_follows_a_stop_and_a_new_start() -> None:
    with use_container(Resources()) as runtime:
        container = await start(runtime)
        first_http, first_files = container.http(), container.files()
        assert await async_view() is first_http
        assert sync_view() is first_files
        await stop(runtime)
        with pytest.raises(ResourcesNotStartedError, match=r"^Resource 'http' is not open"):
            await async_view()
        with pytest.raises(ResourcesNotStartedError, match=r"^Resource 'files' is not open"):
            sync_view()
        await start(runtime)
        try:
            assert await async_view() is container.http() is not first_http
            assert sync_view() is container.files() is not first_files
        finally:
            await stop(runtime)


async def test_a_resolved_view_follows_an_override_put_on_and_taken_off() -> None:
    with use_container(Resources()) as runtime:
        container = await start(runtime)
        try:
            opened = container.http()
            assert await async_view() is opened
            fake = Client()
            with container.http.override(providers.Object(fake)):
                assert await async_view() is fake
                assert sync_view_of_the_async_resource() is fake  # no loop check for it
            assert await async_view() is opened
            with container.files.override(providers.Object(fake)):
                assert sync_view() is fake
            assert sync_view() is container.files()
        finally:
            await stop(runtime)


async def test_a_resolved_view_gets_no_value_on_another_loop_or_a_stray_thread() -> None:
    with use_container(Resources()) as runtime:
        container = await start(runtime)
        try:
            assert await async_view() is container.http()
            assert await asyncio.to_thread(sync_view) is container.files()
            elsewhere = in_new_thread(lambda: asyncio.run(async_view()))
            assert isinstance(elsewhere, WrongEventLoopError)
            assert "another event loop" in str(elsewhere)
            stray = in_new_thread(sync_view_of_the_async_resource)
            assert isinstance(stray, WrongEventLoopError)
            assert "a thread that cannot reach that loop" in str(stray)
            assert in_new_thread(sync_view) is container.files()  # not bound to a loop
        finally:
            await stop(runtime)


async def test_a_resolved_view_follows_a_container_swap_and_back() -> None:
    with use_container(Resources()) as runtime:
        container = await start(runtime)
        try:
            assert await async_view() is container.http()
            with use_container(Resources()) as other_runtime:
                with pytest.raises(ResourcesNotStartedError, match="'http' is not open"):
                    await async_view()
                other = await start(other_runtime)
                try:
                    assert await async_view() is other.http() is not container.http()
                    assert sync_view() is other.files()
                finally:
                    await stop(other_runtime)
            assert await async_view() is container.http()
            assert sync_view() is container.files()
        finally:
            await stop(runtime)
