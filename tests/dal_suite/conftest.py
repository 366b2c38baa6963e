"""The drop-in suite: django-asgi-lifespan's checks, run against our library.

Run it on its own, with the drop-in project's settings (the main suite's
``tests.settings`` cannot serve it)::

    DJANGO_SETTINGS_MODULE=tests.dal_project.settings python -m pytest tests/dal_suite

``--dal-reverse`` runs the tests in reverse order (``tests/servers/test_dal_suite.py``
runs both orders). The main suite does not collect this directory
(``norecursedirs`` in ``pyproject.toml``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.test import override_settings

from lifespan_container.asgi import get_asgi_application
from lifespan_container.handler import LifespanASGIHandler
from tests.dal_suite.support import UpstreamThread

SETTINGS = "tests.dal_project.settings"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dal-reverse",
        action="store_true",
        default=False,
        help="Run the drop-in suite's tests in reverse order.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("DJANGO_SETTINGS_MODULE") != SETTINGS:
        msg = f"tests/dal_suite runs with DJANGO_SETTINGS_MODULE={SETTINGS}"
        raise pytest.UsageError(msg)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--dal-reverse"):
        items.reverse()


@pytest.fixture(scope="session", autouse=True)
def upstream() -> Iterator[UpstreamThread]:
    """The local server the views send their requests to, for the whole session."""
    server = UpstreamThread()
    server.start()
    try:
        with override_settings(DAL_UPSTREAM_URL=server.url):
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def application() -> LifespanASGIHandler:
    """One handler for the whole session, as django-asgi-lifespan's suite has."""
    return get_asgi_application()
