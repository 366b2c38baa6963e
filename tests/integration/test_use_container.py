"""``testing.use_container()``: another container for a block, the previous one put back."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from lifespan_container import get_container
from lifespan_container.exceptions import LifespanContainerError
from lifespan_container.testing import lifespan, use_container
from tests.containers import Container


def test_the_running_container_itself_is_refused_with_the_fix() -> None:
    """Two runtimes cannot both open one instance's resources: say what to pass."""
    block = use_container(get_container())
    with pytest.raises(LifespanContainerError, match="Pass its class"):
        block.__enter__()


@pytest.mark.asyncio
async def test_an_instance_used_for_a_block_opens_there_and_is_clean_after() -> None:
    """A new instance runs its lifespan in the block; no guard of the block stays on it."""
    instance = Container()
    with use_container(instance) as runtime:
        assert runtime.lifecycle is not None
        async with lifespan():
            assert all(runtime.lifecycle.is_open(name) for name in runtime.lifecycle.names)
    with use_container(instance) as again:
        assert again.lifecycle is not None
        assert not any(again.lifecycle.overridden(name) for name in again.lifecycle.names)
        async with lifespan():
            assert all(again.lifecycle.is_open(name) for name in again.lifecycle.names)


def test_a_container_class_is_instantiated_and_the_previous_one_comes_back() -> None:
    """A class gives a fresh instance for the block only."""
    before = get_container()
    with use_container(Container) as runtime:
        assert getattr(runtime.container, "declarative_parent", None) is Container
        assert get_container() is runtime.container is not before
    assert get_container() is before


def test_none_is_a_project_without_a_container() -> None:
    """``use_container(None)``: the runtime has no lifecycle; get_container() says so."""
    with use_container(None) as runtime:
        assert runtime.lifecycle is None
        with pytest.raises(ImproperlyConfigured, match=r'"CONTAINER"\] is None'):
            get_container()
