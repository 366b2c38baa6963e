"""One container per process, whatever the app order; overrides that never leak or vanish."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dependency_injector import providers
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from lifespan_container import get_container
from lifespan_container._runtime import current_runtime, set_runtime
from lifespan_container.exceptions import ResourcesNotStartedError, StartupFailedError
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan, use_container
from tests.containers import Container
from tests.integration.test_pytest_plugin import inner, run  # noqa: F401 (the pytester fixture)


@pytest.fixture
def fresh() -> Iterator[None]:
    """No runtime loaded yet, as at the start of a process; the previous one put back.

    Not ``use_container(None)``, which installs a runtime without a container: these
    tests are about the process before any runtime exists (``_runtime`` internals).
    """
    previous = set_runtime(None)
    yield
    set_runtime(previous)


@pytest.mark.usefixtures("fresh")
def test_an_earlier_apps_ready_keeps_its_container() -> None:
    """``get_container()`` in another app's ``ready()`` and our ``ready()`` share one instance."""
    early = get_container()
    early.config.from_dict({"set_in": "another app's ready()"})  # type: ignore[attr-defined]
    apps.get_app_config("lifespan_container").ready()
    assert get_container() is early
    assert get_container().config.set_in() == "another app's ready()"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("fresh")
def test_get_container_while_apps_are_importing_says_when_to_call_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the app registry is loaded: a clear error, and no container is made."""
    monkeypatch.setattr(apps, "apps_ready", False)
    with pytest.raises(ImproperlyConfigured, match=r"still importing the apps .* AppConfig\.ready"):
        get_container()
    assert current_runtime() is None


@pytest.mark.asyncio
async def test_a_class_override_after_instantiation_fails_the_startup_with_the_fix() -> None:
    """``Container.greeting.override(...)`` never reaches the running container: refused, undone."""
    with use_container(Container()) as runtime:
        try:
            Container.greeting.override(providers.Object("fake"))
            with pytest.raises(
                StartupFailedError, match=r"Container\.greeting was overridden on the"
            ):
                async with lifespan():
                    pass  # pragma: no cover (the startup fails)
            assert Container.greeting.last_overriding is not None  # the caller's to undo
            assert runtime.phase == "idle"
        finally:
            Container.greeting.reset_override()


@pytest.mark.asyncio
async def test_overrides_made_inside_a_lifespan_are_undone_at_its_exit() -> None:
    """``get_container().x.override(fake)`` lasts as long as the ``lifespan()`` block."""
    with use_container(Container()) as runtime:
        container: Any = runtime.container
        async with lifespan():
            container.greeting.override(providers.Object("fake"))
            assert container.greeting() == "fake"
        assert len(container.greeting.overridden) == 1  # the lifecycle's guard
        with pytest.raises(ResourcesNotStartedError):
            container.greeting()


def test_the_plugin_undoes_instance_overrides_and_refuses_class_ones(
    inner: pytest.Pytester,  # noqa: F811 (the fixture imported above)
) -> None:
    """dependency-injector's habits in tests: the next test never sees the last one's fake."""
    inner.makepyfile(
        """
        import pytest
        from dependency_injector import providers
        from lifespan_container import get_container
        from tests.containers import Container

        @pytest.mark.asyncio
        async def test_overrides_the_running_container(lifespan):
            get_container().greeting.override(providers.Object("fake"))
            assert get_container().greeting() == "fake"

        @pytest.mark.asyncio
        async def test_sees_the_real_value(lifespan):
            assert get_container().greeting() == "hello"

        @pytest.mark.asyncio
        async def test_overrides_the_class_while_serving(lifespan):
            Container.greeting.override(providers.Object("fake"))
            assert get_container().greeting() == "hello"  # what the error is about

        def test_undo_it():
            Container.greeting.reset_last_overriding()
        """
    )
    result = run(inner)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_overrides_the_class_while_serving*",
            "*overridden on the container class*",
        ]
    )


def test_plain_dependency_injector_tests_keep_their_class_overrides(
    inner: pytest.Pytester,  # noqa: F811 (the fixture imported above)
) -> None:
    """Tests that make their own ``Container()`` (no lifespan) are not the plugin's business."""
    inner.makepyfile(
        """
        import pytest
        from dependency_injector import providers
        from tests.containers import Container

        @pytest.fixture(scope="module", autouse=True)
        def fake():
            Container.greeting.override(providers.Object("module fake"))
            yield
            Container.greeting.reset_last_overriding()

        def test_one():
            assert Container().greeting() == "module fake"

        def test_two():
            Container.weather.override(providers.Object("leaky but plain"))
            assert Container().greeting() == "module fake"

        def test_three():
            assert Container().greeting() == "module fake"
            Container.weather.reset_last_overriding()
        """
    )
    run(inner).assert_outcomes(passed=3)


def test_an_override_made_before_the_container_and_removed_is_never_reported() -> None:
    """Removing a class override is not an error, then or later."""
    Container.greeting.override(providers.Object("early"))
    runtime = Runtime(Container())
    Container.greeting.reset_last_overriding()
    runtime.refuse_class_overrides()
    runtime.refuse_class_overrides()


@pytest.mark.asyncio
async def test_the_first_request_without_a_lifespan_logs_one_warning_naming_the_flag(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """uvicorn ``--lifespan off``, daphne: one WARNING at the first request, not at each."""
    import httpx  # noqa: PLC0415

    from lifespan_container.handler import LifespanHandler  # noqa: PLC0415

    runtime = Runtime(Container())
    app = LifespanHandler(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/hello")
        await client.get("/hello")
    warnings = [r for r in caplog.records if "lifespan never started" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelname == "WARNING"
    assert "--lifespan off" in warnings[0].getMessage()


@pytest.mark.asyncio
async def test_no_warning_when_the_lifespan_ran(caplog: pytest.LogCaptureFixture) -> None:
    from lifespan_container.testing import lifespan_client  # noqa: PLC0415

    with use_container(Container()):
        async with lifespan_client() as client:
            await client.get("/hello")
    assert not [r for r in caplog.records if "lifespan never started" in r.getMessage()]
