"""Django's sync test clients with the real lifespan: ``with lifespan()`` runs it on a
loop in a background thread, where the async views and their resources run.

The HTTP client resource is a real ``httpx.AsyncClient`` talking to a real local
server (``tests.upstream``), itself on a loop thread of the test's own: the
client is bound to the lifespan's loop, so a view served anywhere else fails.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client, TestCase, TransactionTestCase, override_settings
from rest_framework.test import APIClient

from lifespan_container.engine.loop_thread import LoopThread
from lifespan_container.exceptions import ResourcesNotStartedError, StartupFailedError
from lifespan_container.register import registered_managers
from lifespan_container.runtime import get_runtime
from lifespan_container.signals import asgi_shutdown, asgi_startup
from lifespan_container.testing import lifespan, override, use_container, with_lifespan
from tests.containers import BrokenContainer, Container
from tests.sync_client_app import TEMPLATES
from tests.upstream import Upstream

sync_client_project = override_settings(ROOT_URLCONF="tests.sync_client_app", TEMPLATES=TEMPLATES)


@contextmanager
def upstream_server() -> Iterator[Upstream]:
    """The local HTTP server, on a loop of its own that sync code does not reach."""
    upstream = Upstream()
    with LoopThread("upstream-loop", adopt=False) as thread:
        thread.call(upstream.__aenter__)
        try:
            yield upstream
        finally:
            thread.call(upstream.__aexit__, None, None, None)


def lifespan_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "lifespan-loop"]


class WithUpstream:
    """A local upstream for the class, its URL the HTTP client's for each test."""

    upstream: Upstream

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cls.upstream = cls.enterClassContext(upstream_server())  # type: ignore[attr-defined]

    def setUp(self) -> None:
        self.enterContext(  # type: ignore[attr-defined]
            override(Container.config.upstream_url, self.upstream.url)
        )


@sync_client_project
class SyncClientTests(WithUpstream, TestCase):
    """``self.client`` in a ``TestCase``, its test methods decorated with ``@with_lifespan``."""

    @with_lifespan
    def test_an_async_view_uses_the_lifespans_http_client(self) -> None:
        for _ in range(3):  # the first request, and the ones after it
            response = self.client.get("/async-function")
            assert response.status_code == 200
            assert response.json()["upstream"] == {"path": "/async-function"}
        assert get_runtime().phase == "serving"

    @with_lifespan
    def test_the_response_keeps_the_context_and_the_templates(self) -> None:
        response = self.client.get("/forecast/oslo")
        self.assertContains(response, "<p>oslo: /forecast/oslo</p>")
        self.assertTemplateUsed(response, "forecast.html")
        assert response.context["city"] == "oslo"

    @with_lifespan
    def test_a_sync_view_reaches_the_http_client_through_async_to_sync(self) -> None:
        response = self.client.get("/sync-bridge")
        assert response.json() == {
            "view": "sync bridge",
            "upstream": {"path": "/sync-bridge"},
            "on_lifespan_loop": True,
        }

    @with_lifespan
    def test_an_async_view_sees_the_tests_transaction(self) -> None:
        """The view's ORM call runs in the test's thread: the user made here is seen there."""
        User.objects.create(username="in-the-test-transaction")
        assert self.client.get("/users").json() == {"users": 1, "greeting": "hello"}

    @with_lifespan
    def test_drfs_api_client_reaches_views_of_both_kinds(self) -> None:
        client = APIClient()
        assert client.get("/drf-upstream").json() == {
            "view": "APIView",
            "upstream": {"path": "/drf"},
        }
        assert client.get("/async-function").status_code == 200

    @override(Container.greeting, "overridden")
    @with_lifespan
    def test_an_override_applies_to_the_views(self) -> None:
        assert self.client.get("/users").json() == {"users": 0, "greeting": "overridden"}

    def test_without_the_lifespan_the_view_fails_clearly(self) -> None:
        """Django's sync client alone runs the async view in a new loop: the resource is
        not open (no lifespan) and the error says what to do."""
        client = Client(raise_request_exception=True)
        with self.assertRaisesMessage(ResourcesNotStartedError, "is not open"):
            client.get("/async-function")


@sync_client_project
class SyncClientTransactionTests(WithUpstream, TransactionTestCase):
    @with_lifespan
    def test_committed_rows_and_the_http_client(self) -> None:
        User.objects.create(username="committed")
        assert self.client.get("/users").json() == {"users": 1, "greeting": "hello"}
        assert self.client.get("/async-function").status_code == 200


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with upstream_server() as running:
        yield running


@pytest.fixture
def project(settings: Any, upstream: Upstream, overrides: Any) -> Upstream:
    settings.ROOT_URLCONF = "tests.sync_client_app"
    settings.TEMPLATES = TEMPLATES
    overrides(Container.config.upstream_url, upstream.url)
    return upstream


@pytest.mark.django_db
def test_pytest_djangos_client_with_the_lifespan_fixture(
    project: Upstream, lifespan: Any, client: Client
) -> None:
    """A sync test asking for ``lifespan``: the fixture runs it on a loop thread."""
    User.objects.create(username="pytest-django")
    assert client.get("/async-function").json()["upstream"] == {"path": "/async-function"}
    assert client.get("/users").json() == {"users": 1, "greeting": "hello"}
    assert lifespan.container is get_runtime().container
    assert len(lifespan_threads()) == 1


def test_a_plain_with_block_and_nothing_left_after_it(project: Upstream) -> None:
    client = Client()
    with lifespan() as state:
        assert state == {}
        assert client.get("/async-function").status_code == 200
        assert len(lifespan_threads()) == 1
    assert get_runtime().phase == "stopped"
    assert not lifespan_threads()
    assert project.requests == 1
    with pytest.raises(ResourcesNotStartedError, match="is not open"):  # closed with it
        Client(raise_request_exception=True).get("/async-function")


def test_each_block_opens_the_resources_anew(project: Upstream) -> None:
    """A second block is a second lifespan, on a new loop, with a new HTTP client."""
    clients = []
    for _ in range(2):
        with lifespan():
            assert Client().get("/async-function").status_code == 200
            clients.append(get_runtime().container.http())  # type: ignore[union-attr]
    assert clients[0] is not clients[1]
    assert all(client.is_closed for client in clients)
    assert project.requests == 2


def test_a_failing_startup_raises_and_leaves_nothing_running() -> None:
    with (
        use_container(BrokenContainer()),
        pytest.raises(StartupFailedError, match="search cluster unreachable"),
        lifespan(),
    ):
        pytest.fail("the block never runs")  # pragma: no cover
    assert not lifespan_threads()


@with_lifespan
def test_with_lifespan_on_a_plain_sync_test(project: Upstream) -> None:
    assert Client().get("/async-function").status_code == 200


def test_sync_shutdown_work_runs_in_the_tests_thread(project: Upstream, connect: Any) -> None:
    """A sync ``asgi_shutdown`` receiver, and a manager's exit that calls ``sync_to_async``,
    run in the thread of the test that leaves the block (where its connection is)."""
    seen: dict[str, int] = {}

    def note(where: str) -> None:
        seen[where] = threading.get_ident()

    @contextlib.asynccontextmanager
    async def manager() -> AsyncIterator[dict[str, Any]]:
        yield {}
        await sync_to_async(note)("manager exit")

    connect(asgi_startup, lambda **_: note("sync startup receiver"))
    connect(asgi_shutdown, lambda **_: note("sync shutdown receiver"))
    registered_managers.add(manager)
    try:
        with lifespan():
            assert Client().get("/async-function").status_code == 200
    finally:
        registered_managers.remove(manager)
    assert seen == dict.fromkeys(
        ("sync startup receiver", "manager exit", "sync shutdown receiver"),
        threading.get_ident(),
    )
    assert get_runtime().phase == "stopped"


def test_a_lifespan_object_is_entered_once(project: Upstream) -> None:
    running = lifespan()
    with running, pytest.raises(RuntimeError, match="running already"):
        running.__enter__()
    assert get_runtime().phase == "stopped"
    assert not lifespan_threads()
