"""Hostile settings and containers are reported, never crash; no message carries a password."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from dependency_injector import containers, providers
from pytest_django.fixtures import Settings as SettingsWrapper

from lifespan_container._checks import check_configuration
from lifespan_container._settings import container_problems, problems
from lifespan_container.exceptions import StartupFailedError
from lifespan_container.handler import LifespanHandler
from lifespan_container.runtime import Runtime
from lifespan_container.testing import lifespan, use_container
from tests.cyclic_containers import PairCycle, SelfCycle
from tests.integration.test_pytest_plugin import ROOT
from tests.lifespan_driver import Lifespan

PASSWORD = "hunter2"  # noqa: S105 (what must never be shown)


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("STARTUP_TIMEOUT", 10**400, "E003"),
        ("STARTUP_TIMEOUT", -(10**400), "E003"),
        ("SHUTDOWN_TIMEOUT", Decimal("1.5"), "E004"),
        ("SHUTDOWN_TIMEOUT", float("inf"), "E004"),
        ("HEALTH_CHECK_TIMEOUT", "5", "E008"),
        ("HEALTH_CHECK_TIMEOUT", float("nan"), "E008"),
        ("HEALTH_CHECK_CACHE", -1, "E009"),
        ("HEALTH_CHECK_CACHE", True, "E009"),
        ("HEALTH_CHECK_CACHE", object(), "E009"),
    ],
)
def test_any_value_that_is_not_finite_seconds_is_the_check_error(
    settings: SettingsWrapper, key: str, value: object, check_id: str
) -> None:
    """Huge ints, Decimals, infinities, strings: the check error, never ``OverflowError``."""
    settings.LIFESPAN_CONTAINER = {"CONTAINER": None, key: value}
    [problem] = problems()
    assert problem.id == f"lifespan_container.{check_id}"
    assert len(problem.msg) < 250  # a 401-digit number is cut short


def test_a_zero_health_cache_turns_reuse_off_and_is_valid(settings: SettingsWrapper) -> None:
    settings.LIFESPAN_CONTAINER = {"CONTAINER": None, "HEALTH_CHECK_CACHE": 0}
    assert problems() == []


def test_a_container_module_that_raises_on_import_is_e006(settings: SettingsWrapper) -> None:
    """Not an ImportError: E006 still names the error and where it was raised."""
    settings.LIFESPAN_CONTAINER = {"CONTAINER": "tests.broken_container.Container"}
    [problem] = container_problems()
    assert problem.id == "lifespan_container.E006"
    assert "RuntimeError: the configuration service did not answer" in problem.msg
    assert "tests/broken_container.py:6" in problem.msg


def test_manage_check_reports_a_broken_container_module_without_a_traceback() -> None:
    """The check command lists E006 and exits 1, in a fresh process that loads the app."""
    result = _check_in_subprocess("tests.broken_container.Container")
    assert result.returncode == 1, result.stderr
    assert "lifespan_container.E006" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("container_class", "cycles"),
    [
        (SelfCycle, {"a": ("a", "dep", "a")}),
        (PairCycle, {"a": ("a", "b", "a"), "b": ("b", "a", "b")}),
    ],
)
def test_cycles_are_found_through_every_provider_and_named_by_path(
    container_class: type[containers.DeclarativeContainer],
    cycles: dict[str, tuple[str, ...]],
) -> None:
    """Creating the runtime never raises; the lifecycle knows each cycle's path."""
    runtime = Runtime(container_class())
    assert runtime.lifecycle is not None
    assert runtime.lifecycle.cycles == cycles


def test_a_cycle_is_check_error_e013(install_container: Any) -> None:
    install_container(SelfCycle())
    [error] = check_configuration()
    assert error.id == "lifespan_container.E013"
    assert "Resource 'a' depends on itself: a -> dep -> a" in error.msg


def test_manage_check_reports_a_cycle_instead_of_crashing() -> None:
    result = _check_in_subprocess("tests.cyclic_containers.PairCycle")
    assert result.returncode == 1, result.stderr
    assert "lifespan_container.E013" in result.stderr
    assert "a -> b -> a" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.asyncio
async def test_a_cycle_fails_the_startup_clearly_and_opens_nothing() -> None:
    """``lifespan.startup.failed`` names the path; no resource (not even ``c``) opened."""
    runtime = Runtime(PairCycle())
    lifespan_connection = Lifespan(LifespanHandler(runtime))
    answer = await lifespan_connection.startup()
    assert answer["type"] == "lifespan.startup.failed"
    assert "resource 'a' depends on itself: a -> b -> a" in answer["message"]
    assert runtime.lifecycle is not None
    assert not runtime.lifecycle.is_open("c")
    with pytest.raises(StartupFailedError):
        await lifespan_connection.finish()


def _check_in_subprocess(container: str) -> subprocess.CompletedProcess[str]:
    script = "from django.core.management import execute_from_command_line; "
    script += "execute_from_command_line(['manage.py', 'check'])"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "LC_TEST_CONTAINER": container,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


# -- secrets ----------------------------------------------------------------------------


async def connection(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=2) as conn:
        yield conn  # pragma: no cover (the DSN is malformed)


class Leaky(containers.DeclarativeContainer):
    # libpq echoes this malformed DSN whole, password included, in its error.
    db = providers.Resource(connection, f"postgresql:/postgres:{PASSWORD}@127.0.0.1/test")


@pytest.mark.asyncio
async def test_a_failing_real_driver_never_shows_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``startup.failed``, the raised error, its chain and the log records are all masked."""
    caplog.set_level(logging.INFO, logger="lifespan_container")
    with use_container(Leaky()), pytest.raises(StartupFailedError) as raised:
        async with lifespan():
            pass  # pragma: no cover (the startup fails)
    message = str(raised.value)
    assert "postgresql:/postgres:****@127.0.0.1/test" in message
    assert PASSWORD not in message
    assert raised.value.__cause__ is None  # the driver's own text stays out of the chain
    formatter = logging.Formatter()
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "Resource 'db' failed to open" in logged
    assert "****" in logged
    assert PASSWORD not in logged


def test_redaction_of_each_form() -> None:
    """URLs (one or two slashes), libpq keywords and secret-named keys of reprs."""
    from lifespan_container._redact import redact  # noqa: PLC0415

    assert redact("redis://:pw@h:6379/0 postgresql://u:p%40ss@h/db") == (
        "redis://:****@h:6379/0 postgresql://u:****@h/db"
    )
    assert redact("host=h password='a b' user=u PGPASSWORD=x") == (
        "host=h password=**** user=u PGPASSWORD=****"
    )
    assert redact("{'PASSWORD': 'x', 'API_TOKEN': b'y', 'SECRET_KEY': \"z\", 'PORT': 5432}") == (
        "{'PASSWORD': ****, 'API_TOKEN': ****, 'SECRET_KEY': ****, 'PORT': 5432}"
    )
    assert redact("resource 'db' raised OSError: [Errno 111] refused") == (
        "resource 'db' raised OSError: [Errno 111] refused"
    )
    assert redact("postgresql://app:p@ss@db/x Authorization: Bearer abc.def") == (
        "postgresql://app:****@db/x Authorization: Bearer ****"
    )


@pytest.mark.parametrize(
    "text",
    [
        "cache_key=user:42:profile",
        "Unexpected token: '}'",
        "monkey: 3 bananas, key=value",
        "http://example.com:8080/search?owner=ops@corp.com",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    """Names that merely end in "key", a "token" in prose, an e-mail in a query string."""
    from lifespan_container._redact import redact  # noqa: PLC0415

    assert redact(text) == text
