"""providers.Configuration gets its values from Django settings and the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from dependency_injector import containers, providers
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container._configuration import configuration_problems, fill_configuration
from lifespan_container._settings import problems
from tests.integration.test_pytest_plugin import ROOT, inner, run  # noqa: F401 (the pytester fixture)


class Configured(containers.DeclarativeContainer):
    config = providers.Configuration()
    weather = providers.Configuration()
    client: providers.Factory[dict[str, Any]] = providers.Factory(
        dict, url=weather.api_url.required(), port=weather.db.port.as_int()
    )


def made(settings: SettingsWrapper, configuration: object = None) -> Any:
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": "tests.integration.test_configuration.Configured",
        "CONFIGURATION": configuration,
    }
    container = Configured()
    fill_configuration(container)
    return container


def test_by_default_every_configuration_gets_every_upper_case_setting(
    settings: SettingsWrapper,
) -> None:
    """As ``config.from_dict(settings.__dict__)`` would, for each top-level configuration."""
    settings.GITHUB_TOKEN = "from settings"  # noqa: S105
    container = made(settings)
    assert container.config.GITHUB_TOKEN() == "from settings"
    assert container.config.ROOT_URLCONF() == settings.ROOT_URLCONF
    assert container.weather.GITHUB_TOKEN() == "from settings"
    assert container.config.lower_case() is None


def test_a_dict_setting_and_the_environment_in_order(
    settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``settings:NAME`` then ``env:PREFIX``: the later source wins, ``__`` nests."""
    settings.WEATHER = {"api_url": "http://from-settings", "units": "metric"}
    monkeypatch.setenv("WEATHER_API_URL", "http://from-env")
    monkeypatch.setenv("WEATHER_DB__PORT", "5433")
    container = made(settings, {"weather": ["settings:WEATHER", "env:WEATHER_"]})
    assert container.weather.api_url() == "http://from-env"
    assert container.weather.units() == "metric"
    assert container.client() == {"url": "http://from-env", "port": 5433}
    assert container.config() == {}  # not named: left alone


@pytest.mark.parametrize(
    "value",
    [["config"], {"config": "setting"}, {"config": "env:"}, {"config": []}, {"": "settings"}],
)
def test_e010_a_configuration_setting_of_the_wrong_shape(
    settings: SettingsWrapper, value: object
) -> None:
    settings.LIFESPAN_CONTAINER = {"CONTAINER": None, "CONFIGURATION": value}
    assert [p.id for p in problems()] == ["lifespan_container.E010"]


def test_e011_a_key_that_names_no_configuration(settings: SettingsWrapper) -> None:
    """The problem names the key and lists the configurations the container has."""
    container = made(settings, {"confg": "settings", "weather": "settings"})
    [problem] = [p for p in configuration_problems(container) if p.id.endswith("E011")]
    assert "names 'confg'" in problem.msg
    assert "'config', 'weather'" in problem.hint


def test_e012_a_required_option_without_a_value_names_where_it_comes_from(
    settings: SettingsWrapper,
) -> None:
    """``weather.api_url.required()`` unset: the fix names the setting and the variable."""
    settings.WEATHER = {"units": "metric"}
    container = made(settings, {"weather": ["settings:WEATHER", "env:WEATHER_"]})
    [problem] = configuration_problems(container)
    assert problem.id == "lifespan_container.E012"
    assert "weather.api_url is required" in problem.msg
    assert problem.hint == (
        "Set settings.WEATHER['api_url'] or the environment variable WEATHER_API_URL."
    )


def test_a_strict_configuration_requires_every_option_it_is_asked_for(
    settings: SettingsWrapper,
) -> None:
    class Strict(containers.DeclarativeContainer):
        config = providers.Configuration(strict=True)
        client: providers.Factory[dict[str, Any]] = providers.Factory(dict, token=config.API_TOKEN)

    settings.LIFESPAN_CONTAINER = {"CONTAINER": None}
    container = Strict()
    fill_configuration(container)
    [problem] = configuration_problems(container)
    assert "config.API_TOKEN is required" in problem.msg
    assert problem.hint == "Set settings.API_TOKEN."


def test_the_navigator_example_serves_and_checks_with_no_workaround(
    inner: pytest.Pytester,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dependency-injector's Django example, as a project of ours: settings -> config -> view."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.navigator.settings")
    inner.makeini(
        """
        [pytest]
        DJANGO_SETTINGS_MODULE = tests.navigator.settings
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )
    inner.makepyfile(
        """
        from django.core.management import call_command
        from django.test import Client
        from lifespan_container import get_container
        from lifespan_container.testing import override
        from tests.navigator.containers import Container

        def test_check_passes():
            call_command("check")

        def test_index_uses_the_settings():
            body = Client().get("/").json()
            assert body["query"] == "Dependency Injector"
            assert body["limit"] == 5
            assert body["repositories"][-1] == "Dependency Injector #5"
            assert (body["token"], body["timeout"]) == ("token-from-settings", 10)

        def test_a_test_overrides_a_value_like_any_provider():
            with override(Container.config.DEFAULT_LIMIT, "2"):
                assert Client().get("/").json()["limit"] == 2
            assert Client().get("/").json()["limit"] == 5

        def test_one_container_per_process():
            assert get_container().config.DEFAULT_QUERY() == "Dependency Injector"
        """
    )
    run(inner).assert_outcomes(passed=4)


def test_the_navigator_check_names_a_missing_required_option() -> None:
    """An empty token: ``manage.py check`` fails with E012 naming the setting to set."""
    script = (
        "import django, sys; from django.conf import settings; django.setup(); "
        "from django.core.management import call_command; call_command('check')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.navigator.settings_without_token",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "lifespan_container.E012" in result.stderr
    assert "config.GITHUB_TOKEN is required" in result.stderr
    assert "Set settings.GITHUB_TOKEN." in result.stderr


def test_e012_names_the_right_one_of_two_unnamed_configurations(
    settings: SettingsWrapper,
) -> None:
    """Both are called ``config`` by dependency-injector; the problem names ``weather``."""

    class Two(containers.DeclarativeContainer):
        config = providers.Configuration()
        weather = providers.Configuration()
        token: providers.Factory[dict[str, Any]] = providers.Factory(
            dict, a=config.GITHUB_TOKEN.required(), b=weather.api_url.required()
        )

    settings.GITHUB_TOKEN = "set"  # noqa: S105
    settings.LIFESPAN_CONTAINER = {
        "CONTAINER": None,
        "CONFIGURATION": {"config": "settings", "weather": "env:WEATHER_"},
    }
    container = Two()
    fill_configuration(container)
    [problem] = configuration_problems(container)
    assert "weather.api_url is required" in problem.msg
    assert problem.hint == "Set the environment variable WEATHER_API_URL."


def test_by_default_the_containers_own_values_win_and_django_defaults_stay_out(
    settings: SettingsWrapper,
) -> None:
    """``default=`` values are kept; only settings the project sets are added."""

    class Defaults(containers.DeclarativeContainer):
        config = providers.Configuration(default={"DEBUG": "from default", "units": "metric"})

    settings.LIFESPAN_CONTAINER = {"CONTAINER": None}
    settings.WEATHER_UNITS = "imperial"
    container = Defaults()
    fill_configuration(container)
    assert container.config.DEBUG() == "from default"
    assert container.config.units() == "metric"
    assert container.config.WEATHER_UNITS() == "imperial"
    assert container.config.DEFAULT_CHARSET() is None  # a Django default, not the project's


def test_e012_says_when_no_source_can_fill_an_option(settings: SettingsWrapper) -> None:
    """A lower-case option with only the ``settings`` source: no setting can fill it."""

    class Lower(containers.DeclarativeContainer):
        config = providers.Configuration()
        client: providers.Factory[dict[str, Any]] = providers.Factory(
            dict, url=config.database_url.required()
        )

    settings.LIFESPAN_CONTAINER = {"CONTAINER": None}
    container = Lower()
    fill_configuration(container)
    [problem] = configuration_problems(container)
    assert problem.hint.startswith("None of the sources of config in settings.")
    assert '"settings" fills upper-case names' in problem.hint
