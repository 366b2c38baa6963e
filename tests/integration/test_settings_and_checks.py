"""Bad configuration is a clear error, by check id, at `check` time and at startup."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container import _runtime, get_container, lifespan_state
from lifespan_container._checks import check_settings
from lifespan_container.asgi import get_asgi_application
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import get_runtime
from lifespan_container.testing import use_container
from tests.containers import Container

VALID = {"CONTAINER": "tests.containers.Container"}


def ids(settings: SettingsWrapper, value: Any) -> list[str]:
    settings.LIFESPAN_CONTAINER = value
    return [message.id or "" for message in check_settings()]


def test_valid_settings_pass(settings: SettingsWrapper) -> None:
    assert ids(settings, VALID) == []
    assert ids(settings, {"CONTAINER": None, "STARTUP_TIMEOUT": 1, "SHUTDOWN_TIMEOUT": 0.5}) == []


def test_e001_setting_is_not_a_dict(settings: SettingsWrapper) -> None:
    assert ids(settings, "tests.containers.Container") == ["lifespan_container.E001"]


def test_e002_unknown_keys(settings: SettingsWrapper) -> None:
    settings.LIFESPAN_CONTAINER = {**VALID, "STARTUP_TIMEOUTS": 3}
    [message] = check_settings()
    assert message.id == "lifespan_container.E002"
    assert "STARTUP_TIMEOUTS" in message.msg
    assert "STARTUP_TIMEOUT" in (message.hint or "")


@pytest.mark.parametrize("bad", [0, -1, "30", True, float("inf"), float("nan"), None])
@pytest.mark.parametrize(
    ("key", "check_id"),
    [
        ("STARTUP_TIMEOUT", "lifespan_container.E003"),
        ("SHUTDOWN_TIMEOUT", "lifespan_container.E004"),
        ("HEALTH_CHECK_TIMEOUT", "lifespan_container.E008"),
    ],
)
def test_e003_e004_e008_timeouts_must_be_positive_numbers(
    settings: SettingsWrapper, key: str, check_id: str, bad: object
) -> None:
    settings.LIFESPAN_CONTAINER = {**VALID, key: bad}
    [message] = check_settings()
    assert message.id == check_id
    assert f"['{key}'] must be a positive number of seconds, not {bad!r}" in message.msg


@pytest.mark.parametrize("bad", [-1, "30", True, float("inf"), float("nan"), None])
def test_e009_the_health_check_cache_must_be_seconds_0_or_more(
    settings: SettingsWrapper, bad: object
) -> None:
    assert ids(settings, {**VALID, "HEALTH_CHECK_CACHE": 0}) == []  # 0 turns reuse off
    settings.LIFESPAN_CONTAINER = {**VALID, "HEALTH_CHECK_CACHE": bad}
    [message] = check_settings()
    assert message.id == "lifespan_container.E009"
    assert (
        f"['HEALTH_CHECK_CACHE'] must be a number (0 or more) of seconds, not {bad!r}"
        in message.msg
    )


def test_e005_container_not_set(settings: SettingsWrapper) -> None:
    assert ids(settings, {"STARTUP_TIMEOUT": 5}) == ["lifespan_container.E005"]
    del settings.LIFESPAN_CONTAINER
    [message] = check_settings()
    assert message.id == "lifespan_container.E005"
    assert "None to use only the lifespan signals" in (message.hint or "")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42, "must be a dotted path string, not int"),
        ("tests.nowhere.Container", "'tests.nowhere.Container' cannot be imported"),
        ("tests.containers.Missing", "'tests.containers.Missing' cannot be imported"),
    ],
)
def test_e006_container_path_does_not_import(
    settings: SettingsWrapper, value: object, text: str
) -> None:
    settings.LIFESPAN_CONTAINER = {"CONTAINER": value}
    [message] = check_settings()
    assert message.id == "lifespan_container.E006"
    assert text in message.msg


def test_e007_container_is_not_a_declarative_container(settings: SettingsWrapper) -> None:
    settings.LIFESPAN_CONTAINER = {"CONTAINER": "tests.containers.greeting"}
    [message] = check_settings()
    assert message.id == "lifespan_container.E007"
    assert "not a subclass of dependency_injector.containers.DeclarativeContainer" in message.msg


def test_manage_py_check_reports_the_problem_with_its_id(settings: SettingsWrapper) -> None:
    """`manage.py check` runs the checks the app registered."""
    settings.LIFESPAN_CONTAINER = {**VALID, "SHUTDOWN_TIMEOUT": -5}
    with pytest.raises(SystemCheckError, match=r"lifespan_container\.E004"):
        call_command("check")


def test_get_asgi_application_refuses_broken_settings(settings: SettingsWrapper) -> None:
    """The server fails to load the app, with the setting and the fix in the error."""
    settings.LIFESPAN_CONTAINER = {"CONTAINER": "tests.nowhere.Container", "STARTUP_TIMEOUT": 0}
    with pytest.raises(ImproperlyConfigured) as raised:
        get_asgi_application()
    assert "lifespan_container.E003" in str(raised.value)
    assert "lifespan_container.E006" in str(raised.value)


def test_get_asgi_application_requires_the_app_installed(settings: SettingsWrapper) -> None:
    settings.INSTALLED_APPS = ["django.contrib.contenttypes"]
    with pytest.raises(ImproperlyConfigured, match="'lifespan_container' is not in INSTALLED_APPS"):
        get_asgi_application()


def test_get_asgi_application_returns_the_handler_of_the_process_container() -> None:
    """The container is instantiated once per process and shared by every entry point."""
    application = get_asgi_application()
    assert isinstance(application, LifespanHandler)
    assert get_container().declarative_parent is Container
    assert application.runtime.container is get_container()
    assert get_asgi_application().runtime.container is get_container()


def test_get_container_without_a_container_says_how_to_set_one() -> None:
    with (
        use_container(None),
        pytest.raises(ImproperlyConfigured, match=r'\["CONTAINER"\] is None'),
    ):
        get_container()


def test_runtime_loads_lazily_and_reports_a_broken_setting(
    monkeypatch: pytest.MonkeyPatch, settings: SettingsWrapper
) -> None:
    """When ready() could not load the container, asking for it raises the check's text."""
    monkeypatch.setattr(_runtime._PROCESS, "runtime", None)
    settings.LIFESPAN_CONTAINER = {"CONTAINER": "tests.containers.greeting"}
    with pytest.raises(ImproperlyConfigured, match=r"lifespan_container\.E007"):
        get_runtime()


def test_lifespan_state_without_a_server_state_is_empty() -> None:
    """Under WSGI (no scope) or a server without state, the helper returns `{}`."""
    request = RequestFactory().get("/")
    assert lifespan_state(request) == {}
    request.scope = {"type": "http"}  # type: ignore[attr-defined]
    assert lifespan_state(request) == {}
    request.scope = {"type": "http", "state": {"db": 1}}  # type: ignore[attr-defined]
    assert lifespan_state(request) == {"db": 1}
