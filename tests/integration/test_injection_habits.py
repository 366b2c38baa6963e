"""What dependency-injector users write on day one: typed options, its @inject, typos."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from dependency_injector import containers, errors, providers
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container import Provide, inject
from lifespan_container._checks import check_injections, refuse_foreign_views
from lifespan_container.exceptions import InjectionError
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan_client, override, use_container
from tests.conftest import Registry


class Typed(containers.DeclarativeContainer):
    config = providers.Configuration()
    http_client = providers.Object("a client")
    db_pool = providers.Object("a pool")


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    container = Typed()
    container.config.from_dict(
        {"port": "8080", "ratio": "0.25", "price": "1.50", "name": "demo", "nested": {"n": "3"}}
    )
    with use_container(container) as runtime:
        yield runtime


def test_typed_and_required_configuration_options_are_providers(
    runtime: Runtime, registry: Registry
) -> None:
    """``.as_int()``, ``.as_float()``, ``.as_(f)``, ``.required()`` pass the check and inject."""

    @inject
    def view(
        port: int = Provide[Typed.config.port.as_int()],
        ratio: float = Provide[Typed.config.ratio.as_float()],
        price: Decimal = Provide[Typed.config.price.as_(Decimal)],  # noqa: B008
        name: str = Provide[Typed.config.name.required()],
        n: int = Provide[Typed.config.nested.n.required().as_int()],
    ) -> tuple[Any, ...]:
        return port, ratio, price, name, n

    where = f"{__name__}.{view.__qualname__}"
    assert [e for e in check_injections() if e.obj == where] == []
    assert view() == (8080, 0.25, Decimal("1.50"), "demo", 3)


def test_a_test_override_of_an_option_reaches_typed_markers(
    runtime: Runtime, registry: Registry
) -> None:
    """``override(Container.config.port, "9090")`` is what ``.as_int()`` converts, then undone."""

    @inject
    def view(port: int = Provide[Typed.config.port.as_int()]) -> int:
        return port

    assert view() == 8080
    with override(Typed.config.port, "9090"):
        assert view() == 9090
    assert view() == 8080


def test_a_required_option_without_a_value_fails_at_the_call(
    runtime: Runtime, registry: Registry
) -> None:
    """dependency-injector's own error names the undefined option; no ``None`` is passed."""

    @inject
    def view(token: str = Provide[Typed.config.token.required()]) -> str:
        return token

    with pytest.raises(errors.Error, match=r'Undefined configuration option "config.token"'):
        view()


def test_e101_suggests_the_closest_providers_of_the_users_container(
    runtime: Runtime, registry: Registry
) -> None:
    """A misspelt name is answered with the container's own providers, closest first."""

    @inject
    def view(client: Any = Provide["http_clent"]) -> Any:
        return client

    where = f"{__name__}.{view.__qualname__}"
    [error] = [e for e in check_injections() if e.obj == where]
    assert "e.g. Provide[Typed.http_client]," in error.msg
    assert "Provide['http_client']" in error.msg
    assert "Container.http" not in error.msg
    with pytest.raises(InjectionError, match=r"e\.g\. Provide\[Typed\.http_client\]"):
        view()


def test_e101_for_an_empty_container_says_it_declares_nothing(
    registry: Registry,
) -> None:
    class Empty(containers.DeclarativeContainer):
        pass

    with use_container(Empty()):

        @inject
        def view(client: Any = Provide["http"]) -> Any:
            return client

        with pytest.raises(InjectionError, match="Empty declares no providers"):
            view()


@pytest.mark.usefixtures("unrefused")
def test_dependency_injectors_own_inject_is_e103_and_refused_at_the_call(
    settings: SettingsWrapper,
) -> None:
    """Half-way through a migration: the check and the call say which decorator to replace."""
    settings.ROOT_URLCONF = "tests.urls_foreign_inject"
    errors_found = [e for e in check_injections() if e.id == "lifespan_container.E103"]
    assert sorted(str(e.obj) for e in errors_found) == [
        "tests.urls_foreign_inject.HalfMigratedClass.get",
        "tests.urls_foreign_inject.half_migrated",
    ]
    assert [e.id for e in check_injections() if e.id == "lifespan_container.E102"] == []
    assert "replace dependency_injector.wiring.inject with lifespan_container.inject" in (
        errors_found[0].msg.lower()
    )
    from tests import urls_foreign_inject  # noqa: PLC0415

    request = RequestFactory().get("/")
    with pytest.raises(InjectionError, match=r"Replace dependency_injector\.wiring\.inject with"):
        urls_foreign_inject.HalfMigratedClass().get(request)


@pytest.fixture
def unrefused() -> Iterator[None]:
    """The half-migrated views as imported: no refusal installed by an earlier test."""
    from dependency_injector import wiring  # noqa: PLC0415

    from tests import urls_foreign_inject  # noqa: PLC0415

    functions: list[Any] = [
        urls_foreign_inject.half_migrated,
        urls_foreign_inject.HalfMigratedClass.get,
    ]
    patched = [wiring._patched_registry.get_callable(f) for f in functions]
    for each in patched:
        each.unwind_injections()
    yield
    for each in patched:
        each.unwind_injections()


@pytest.mark.asyncio
@pytest.mark.usefixtures("unrefused")
async def test_the_lifespan_startup_refuses_foreign_inject_before_any_request(
    settings: SettingsWrapper,
) -> None:
    """Without ``manage.py check``, the first call still names the fix (never a marker)."""
    settings.ROOT_URLCONF = "tests.urls_foreign_inject"
    async with lifespan_client() as client:
        response = await client.get("/half-migrated")
    assert response.status_code == 500
    from tests import urls_foreign_inject  # noqa: PLC0415

    with pytest.raises(InjectionError, match=r"lifespan_container\.inject"):
        await urls_foreign_inject.half_migrated(RequestFactory().get("/"))
    assert sorted(refuse_foreign_views()) == [
        "tests.urls_foreign_inject.HalfMigratedClass.get",
        "tests.urls_foreign_inject.half_migrated",
    ]


def test_a_misspelt_provider_is_a_check_error_naming_the_line(settings: SettingsWrapper) -> None:
    """``Provide[Container.typo]`` breaks the URLconf import: E104 names file, line and fix."""
    settings.ROOT_URLCONF = "tests.urls_typo"
    assert check_injections() == []  # reported once, by the URL check
    [error] = [e for e in run_checks() if e.id == "lifespan_container.E104"]
    assert error.id == "lifespan_container.E104"
    assert "has no attribute 'greting'" in error.msg
    assert "tests/views_typo.py:" in error.msg
    assert "check the spelling against the providers declared" in (error.hint or "")


def test_check_command_reports_the_typo_instead_of_crashing(settings: SettingsWrapper) -> None:
    """``manage.py check`` ends in a SystemCheckError listing E104, not a raw traceback."""
    from django.core.management.base import SystemCheckError  # noqa: PLC0415

    settings.ROOT_URLCONF = "tests.urls_typo"
    with pytest.raises(SystemCheckError, match=r"lifespan_container\.E104"):
        call_command("check")


class TwoConfigs(containers.DeclarativeContainer):
    """Both configurations carry dependency-injector's default name, ``config``."""

    config = providers.Configuration()
    weather = providers.Configuration()
    units = providers.Factory(str, weather.units.required())


def test_two_unnamed_configurations_are_told_apart(
    registry: Registry,
) -> None:
    """``Container.weather.x.required()`` reads ``weather``, not the first ``config``."""
    container = TwoConfigs()
    container.config.from_dict({"units": "from config"})
    container.weather.from_dict({"units": "metric", "days": "3"})
    with use_container(container):

        @inject
        def view(
            units: str = Provide[TwoConfigs.weather.units.required()],
            days: int = Provide[TwoConfigs.weather.days.required().as_int()],
            plain: str = Provide[TwoConfigs.config.units],
        ) -> tuple[str, int, str]:
            return units, days, plain

        assert view() == ("metric", 3, "from config")


def test_a_required_option_only_a_marker_uses_is_e012(runtime: Runtime, registry: Registry) -> None:
    """Not declared by any provider: the check still finds the view's required option."""

    @inject
    def view(token: str = Provide[Typed.config.api_token.required()]) -> str:
        return token

    where = f"{__name__}.{view.__qualname__}"
    [error] = [e for e in check_injections() if e.obj == where]
    assert error.id == "lifespan_container.E012"
    assert 'Undefined configuration option "config.api_token"' in error.msg


def test_override_of_a_typed_or_required_option_sets_the_option(
    runtime: Runtime, registry: Registry
) -> None:
    """``override(Container.config.port.as_int(), "1")`` overrides ``config.port`` itself."""

    @inject
    def view(
        port: int = Provide[Typed.config.port.as_int()],
        name: str = Provide[Typed.config.name.required()],
    ) -> tuple[int, str]:
        return port, name

    with (
        override(Typed.config.port.as_int(), "1"),
        override(Typed.config.name.required(), "overridden"),
    ):
        assert view() == (1, "overridden")
    assert view() == (8080, "demo")


def test_a_url_check_failing_for_its_own_reasons_still_raises(
    settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a URLconf that cannot be imported becomes E104; other errors are Django's."""
    from django.core.checks import Tags, register  # noqa: PLC0415
    from django.core.checks.registry import registry as check_registry  # noqa: PLC0415

    from lifespan_container._checks import report_urlconf_import_errors  # noqa: PLC0415

    monkeypatch.setattr(check_registry, "registered_checks", set(check_registry.registered_checks))

    def broken(app_configs: Any = None, **kwargs: Any) -> list[Any]:
        msg = "a real bug in a URL check"
        raise ValueError(msg)

    register(broken, Tags.urls)
    report_urlconf_import_errors()
    with pytest.raises(ValueError, match="a real bug in a URL check"):
        run_checks(tags=[Tags.urls])
