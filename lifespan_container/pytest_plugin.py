"""The pytest plugin: fixtures that run the real lifespan and reset overrides.

Registered through the ``pytest11`` entry point. It imports nothing from Django
or from the library until a test asks for one of its fixtures, so it does
nothing in a project that does not use the library. The async fixtures need
pytest-asyncio; they run in the test's event loop (function scope). Without
pytest-asyncio they still exist, and an async test that asks for one fails saying
so; sync tests need no pytest-asyncio.

``lifespan``
    The project's lifespan running for the test: the real startup before it, the
    real shutdown after it. A :class:`RunningLifespan` (``.state``,
    ``.container``, ``.application``). For an async test it runs in the test's
    event loop: Django's ``async_client`` (pytest-django) and ``@inject``-ed views
    work while it runs. For a sync test it runs on an event loop in a background
    thread, where Django's sync ``client`` (and DRF's ``APIClient``) serves the
    async views.
``asgi_client``
    An ``httpx.AsyncClient`` talking to the application in-process, with the
    lifespan running and its state passed to each request.
``lifespan_overrides``
    A mapping ``{provider: replacement}`` applied *before* the startup, so the
    real resources are never opened. Empty by default: override this fixture
    in a module or a conftest.
``overrides``
    Override providers during a test: ``overrides(Container.http, fake)``;
    everything is undone after the test.
``asgi_application``
    The application the fixtures drive: ``get_asgi_application()`` by default.
    Override it if your ``asgi.py`` wraps the handler (Channels, middleware).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx
    from dependency_injector import containers

    from lifespan_container.engine.protocol import ASGIApp
    from lifespan_container.testing import Overrides

__all__ = ["RunningLifespan"]

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover (the async fixtures need pytest-asyncio)
    pytest_asyncio = None  # type: ignore[assignment]


@dataclass(frozen=True)
class RunningLifespan:
    """What the ``lifespan`` fixture gives a test."""

    application: Any
    state: dict[str, Any]
    container: containers.Container | None


@pytest.fixture(autouse=True)
def _lifespan_container_isolation(request: pytest.FixtureRequest) -> Iterator[None]:
    """Undo what a test overrode on the running container; report useless class overrides.

    ``get_container().x.override(fake)`` is undone after the test. A test that ran
    the lifespan and overrode a provider of the container *class* meanwhile (which
    the running container never sees) errors with the fix; plain
    dependency-injector tests that make their own ``Container()`` are left alone.
    Costs nothing until Django loaded the library.
    """
    runtime_module = sys.modules.get("lifespan_container._runtime")
    runtime = runtime_module.current_runtime() if runtime_module is not None else None
    if runtime is None:
        yield
        return
    saved, classes, lifespans = runtime.overrides(), runtime.class_overrides(), runtime.lifespans
    yield
    runtime.restore(saved)
    if runtime.lifespans != lifespans or {"lifespan", "asgi_client"} & set(request.fixturenames):
        runtime.refuse_class_overrides(since=classes)


@pytest.fixture
def asgi_application() -> ASGIApp:
    """The project's ASGI application (``lifespan_container.asgi.get_asgi_application()``)."""
    from lifespan_container._lifespans import default_application  # noqa: PLC0415

    return default_application()


@pytest.fixture
def lifespan_overrides() -> Mapping[Any, object]:
    """Providers to replace before the startup: ``{Container.db_pool: FakePool()}``."""
    return {}


@pytest.fixture
def overrides() -> Iterator[Overrides]:
    """Override providers for one test; undone after it, newest first."""
    from lifespan_container.testing import Overrides  # noqa: PLC0415

    applied = Overrides()
    yield applied
    applied.reset()


_HAS_ASYNCIO: bool = pytest_asyncio is not None

_NEEDS_ASYNCIO = (
    "The `{}` fixture of an async test is async and needs pytest-asyncio, which is not "
    "installed: pip install pytest-asyncio (and mark the test with @pytest.mark.asyncio, "
    "or set asyncio_mode = auto)."
)


@pytest.fixture
def lifespan(
    request: pytest.FixtureRequest,
    asgi_application: ASGIApp,
    lifespan_overrides: Mapping[Any, object],
) -> Iterator[RunningLifespan]:
    """The project's lifespan for one test: in its event loop, or beside a sync test.

    An async test gets it in the test's own event loop (needs pytest-asyncio). A sync
    test gets it on an event loop in a background thread, where Django's sync
    ``client`` serves the async views (``with lifespan()``).
    """
    if _is_async(request):
        if not _HAS_ASYNCIO:
            pytest.fail(_NEEDS_ASYNCIO.format("lifespan"), pytrace=False)
        yield request.getfixturevalue("_lifespan_in_the_tests_loop")
        return
    from lifespan_container.runtime import get_runtime  # noqa: PLC0415
    from lifespan_container.testing import Overrides  # noqa: PLC0415
    from lifespan_container.testing import lifespan as run_lifespan  # noqa: PLC0415

    before_startup = Overrides()
    try:
        for target, replacement in lifespan_overrides.items():
            before_startup(target, replacement)
        with run_lifespan(asgi_application) as state:
            yield RunningLifespan(asgi_application, state, get_runtime().container)
    finally:
        before_startup.reset()


def _is_async(request: pytest.FixtureRequest) -> bool:
    from asgiref.sync import iscoroutinefunction  # noqa: PLC0415

    test = getattr(request.node, "obj", None)
    return test is not None and iscoroutinefunction(test)


if _HAS_ASYNCIO:

    @pytest_asyncio.fixture(loop_scope="function")
    async def _lifespan_in_the_tests_loop(
        asgi_application: ASGIApp, lifespan_overrides: Mapping[Any, object]
    ) -> AsyncIterator[RunningLifespan]:
        """The project's lifespan, running in the test's event loop for one test."""
        from lifespan_container.runtime import get_runtime  # noqa: PLC0415
        from lifespan_container.testing import Overrides  # noqa: PLC0415
        from lifespan_container.testing import lifespan as run_lifespan  # noqa: PLC0415

        before_startup = Overrides()
        try:
            for target, replacement in lifespan_overrides.items():
                before_startup(target, replacement)
            async with run_lifespan(asgi_application) as state:
                yield RunningLifespan(asgi_application, state, get_runtime().container)
        finally:
            before_startup.reset()

    @pytest_asyncio.fixture(loop_scope="function")
    async def asgi_client(lifespan: RunningLifespan) -> AsyncIterator[httpx.AsyncClient]:
        """An httpx client for the application, in-process, with the lifespan running."""
        from lifespan_container.engine.driver import client_for  # noqa: PLC0415

        async with client_for(lifespan.application, lifespan.state) as client:
            yield client

else:

    @pytest.fixture
    def asgi_client() -> httpx.AsyncClient:
        """Fails: the real fixture needs pytest-asyncio."""
        pytest.fail(_NEEDS_ASYNCIO.format("asgi_client"), pytrace=False)
