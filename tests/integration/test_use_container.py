"""``testing.use_container()``: another container for a block, the previous one put back."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from lifespan_container import get_container
from lifespan_container.runtime import get_runtime
from lifespan_container.testing import lifespan, use_container
from tests.containers import Container


@pytest.mark.asyncio
async def test_the_projects_own_container_opens_normally_after_a_block_that_used_it() -> None:
    """Installing the running container itself leaves no guard of the block's behind."""
    project = get_runtime()
    assert project.lifecycle is not None
    with use_container(get_container()) as runtime:
        assert runtime is get_runtime()
        assert runtime is not project
    assert get_runtime() is project
    assert not any(project.lifecycle.overridden(name) for name in project.lifecycle.names)
    async with lifespan():
        assert all(project.lifecycle.is_open(name) for name in project.lifecycle.names)


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
