"""The pytest plugin, shown by inner pytest sessions (pytester, in subprocesses)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS_PROJECT = ROOT / "tests" / "docs_project"
RECIPE = re.compile(r"^```python\n# test file: (\S+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
RECIPES = RECIPE.findall((ROOT / "docs" / "how-to" / "testing.md").read_text(encoding="utf-8"))
INNER_TIMEOUT = 120  # bounds the harness, not the behaviour under test


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An inner pytest session that can import this repository's `tests` package."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(ROOT)]))
    monkeypatch.delenv("LC_TEST_CONTAINER", raising=False)
    pytester.makeini(
        """
        [pytest]
        DJANGO_SETTINGS_MODULE = tests.settings
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )
    return pytester


def run(inner: pytest.Pytester, *args: str) -> pytest.RunResult:
    return inner.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=INNER_TIMEOUT)


def test_overrides_are_reset_between_tests(inner: pytest.Pytester) -> None:
    """The second test sees the real provider again."""
    inner.makepyfile(
        """
        import pytest
        from lifespan_container import get_container
        from tests.containers import Container

        @pytest.mark.asyncio
        async def test_first(lifespan, overrides):
            overrides(Container.greeting, "overridden")
            assert get_container().greeting() == "overridden"

        @pytest.mark.asyncio
        async def test_second(lifespan):
            assert get_container().greeting() == "hello"
        """
    )
    run(inner).assert_outcomes(passed=2)


def test_an_overridden_resource_that_would_fail_is_never_opened(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LC_TEST_CONTAINER", "tests.containers.BrokenContainer")
    inner.makepyfile(
        """
        import pytest
        from tests.containers import OPENED_SEARCH, BrokenContainer

        @pytest.fixture
        def lifespan_overrides():
            return {BrokenContainer.search: "fake search"}

        @pytest.mark.asyncio
        async def test_uses_the_fake(lifespan, asgi_client):
            assert lifespan.container.search() == "fake search"
            assert (await asgi_client.get("/hello")).text == "hello"
            assert OPENED_SEARCH == []
        """
    )
    run(inner).assert_outcomes(passed=1)


def test_a_failing_startup_fails_the_test_naming_the_provider(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LC_TEST_CONTAINER", "tests.containers.BrokenContainer")
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_needs_the_resources(lifespan):
            pass
        """
    )
    result = run(inner)
    result.assert_outcomes(errors=1)
    expected = (
        "*StartupFailedError: Startup failed: resource 'search' raised "
        "ConnectionRefusedError: search cluster unreachable.*"
    )
    result.stdout.fnmatch_lines([expected])


def test_fixtures_work_with_django_db_marks(inner: pytest.Pytester) -> None:
    """pytest-django's db marks, its async_client, and the lifespan fixtures together."""
    inner.makepyfile(
        """
        import pytest
        from django.contrib.auth.models import User

        # Async ORM calls run in Django's sync thread, outside a plain django_db
        # test's transaction (pytest-django's rule), so count from the start.
        @pytest.mark.django_db
        @pytest.mark.asyncio
        async def test_db(lifespan, async_client):
            before = await User.objects.acount()
            await User.objects.acreate(username="ada")
            response = await async_client.get("/users")
            assert response.json() == {"users": before + 1, "greeting": "hello"}

        @pytest.mark.django_db(transaction=True)
        @pytest.mark.asyncio
        async def test_transactional_db(asgi_client):
            before = await User.objects.acount()
            await User.objects.acreate(username="grace")
            response = await asgi_client.get("/users")
            assert response.json() == {"users": before + 1, "greeting": "hello"}
        """
    )
    run(inner).assert_outcomes(passed=2)


def test_test_case_and_transaction_test_case(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        from django.contrib.auth.models import User
        from django.test import TestCase, TransactionTestCase
        from lifespan_container.testing import with_lifespan

        class WithTestCase(TestCase):
            @with_lifespan
            async def test_view(self):
                await User.objects.acreate(username="ada")
                response = await self.async_client.get("/users")
                self.assertEqual(response.json(), {"users": 1, "greeting": "hello"})

        class WithTransactionTestCase(TransactionTestCase):
            @with_lifespan
            async def test_view(self):
                response = await self.async_client.get("/users")
                self.assertEqual(response.json(), {"users": 0, "greeting": "hello"})
        """
    )
    run(inner).assert_outcomes(passed=2)


def test_the_plugin_does_nothing_in_a_project_without_the_library(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Django settings, no Django: the plugin loads and imports nothing more."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    pytester.makepyfile(
        """
        import sys

        def test_nothing_was_imported(request):
            assert request.config.pluginmanager.has_plugin("lifespan_container")
            loaded = [name for name in sys.modules if name.startswith("lifespan_container")]
            assert loaded == ["lifespan_container", "lifespan_container.pytest_plugin"]
            assert not [name for name in sys.modules if name.split(".")[0] == "django"]
        """
    )
    pytester.runpytest_subprocess(
        "-p", "no:django", "-p", "no:cacheprovider", timeout=INNER_TIMEOUT
    ).assert_outcomes(passed=1)


def test_the_testing_page_has_recipes() -> None:
    assert len(RECIPES) >= 8


@pytest.mark.parametrize(("name", "source"), RECIPES, ids=[name for name, _ in RECIPES])
def test_testing_page_recipe(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, source: str
) -> None:
    """Every recipe of docs/how-to/testing.md passes, as written, against the docs' project."""
    shutil.copytree(DOCS_PROJECT / "myproject", pytester.path / "myproject")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "myproject.settings")
    pytester.makeini(
        """
        [pytest]
        DJANGO_SETTINGS_MODULE = myproject.settings
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )
    (pytester.path / name).write_text(source, encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", name, timeout=INNER_TIMEOUT)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 1
    assert set(outcomes) <= {"passed"}, outcomes
