"""``manage.py resources``: the container's providers, and a deployment smoke test.

Without options it lists every provider of the container: the resources in
start order (stage by stage: a stage opens after the stages before it, its
resources concurrently) with what they depend on and their health check (the
declared one, or the default for the type the provider is annotated to give,
or ``none``), then the request-scoped providers (``RequestResource``,
``CurrentRequest``), then the other providers, each with what it depends on;
last, the request path: whether every request served by the handler starts a
thread for its sync work, and which middleware or receivers make it do so.

``--check`` opens every resource as the server would, runs every health check
(afresh: no cached result), closes everything, and exits 1 naming what failed:
the resource that failed to open, or each resource whose check failed or timed
out. Run it before sending traffic to a new release. Every error it prints has
its credentials masked.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from dependency_injector import providers
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifespan_container._redact import redact
from lifespan_container._request_cycle import thread_causes
from lifespan_container._runtime import checked_runtime, container_class
from lifespan_container._settings import fast_path, lifespan_settings
from lifespan_container.engine.graph import provider_paths
from lifespan_container.engine.health import CheckResult, run_checks
from lifespan_container.engine.health_checks import planned_check
from lifespan_container.exceptions import ShutdownFailedError, StartupFailedError
from lifespan_container.handler import LifespanHandler
from lifespan_container.per_request import CurrentRequest, RequestResource
from lifespan_container.runner import open_resources

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dependency_injector import containers

    from lifespan_container.engine.lifecycle import ResourceLifecycle


NO_CHECK = "none"
"""How the listing shows a resource that gets no health check."""

UNKNOWN_CHECK = "default for its type, if any (--check shows it)"
"""How the listing shows a resource whose check depends on a type not known before
it opens: its provider is not annotated, or too broadly (``object``, ``Any``)."""


class Command(BaseCommand):
    """List the container's providers; with ``--check``, open and check every resource."""

    help = (
        "List the container's providers with their dependencies and the resources' start "
        "order. --check opens every resource, runs every health check, closes them and "
        "exits 1 naming what failed."
    )
    requires_system_checks = "__all__"

    def add_arguments(self, parser: CommandParser) -> None:  # noqa: D102
        parser.add_argument(
            "--check",
            action="store_true",
            help="Open every resource, run every health check, close them; exit 1 on failure.",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:  # noqa: ARG002, D102
        runtime = checked_runtime()
        if runtime.container is None or runtime.lifecycle is None:
            if options["json"]:
                empty = {"container": None, "request_path": request_path()}
                self.stdout.write(json.dumps(empty, indent=2))
                return
            self.stdout.write('LIFESPAN_CONTAINER["CONTAINER"] is None: there is no container.')
            self._request_path(request_path())
            return
        listing = describe(runtime.container, runtime.lifecycle)
        listing["request_path"] = request_path()
        results = self._check(runtime.lifecycle) if options["check"] else None
        _with_checks_seen(listing, results or [])
        if options["json"]:
            if results is not None:
                listing["checks"] = [vars(result) for result in results]
            self.stdout.write(json.dumps(listing, indent=2))
        else:
            self._print(listing, results)
        failed = [result for result in results or [] if not result.ok]
        if failed:
            raise CommandError(
                "Health checks failed: "
                + "; ".join(
                    f"{result.name} {result.status}: {redact(str(result.error))}"
                    for result in failed
                )
            )

    def _check(self, lifecycle: ResourceLifecycle) -> list[CheckResult]:
        async def open_and_check() -> list[CheckResult]:
            async with open_resources():
                # A smoke test wants this release's results: never a cached one.
                timeout = lifespan_settings().health_check_timeout
                return await run_checks(lifecycle, timeout, cache=0.0)

        try:
            return asyncio.run(open_and_check())
        except (StartupFailedError, ShutdownFailedError) as exc:
            raise CommandError(redact(str(exc))) from exc

    def _print(self, listing: dict[str, Any], results: list[CheckResult] | None) -> None:
        write = self.stdout.write
        write(f"Container {listing['container']}")
        write("")
        write("Resources, in start order (one stage opens concurrently, after the ones before):")
        rows = [
            [
                str(resource["stage"]),
                resource["name"],
                resource["opens"],
                ", ".join(resource["depends_on"]) or "-",
                resource["health_check"] or NO_CHECK,
            ]
            for resource in listing["resources"]
        ]
        self._table(["stage", "resource", "opens", "depends on", "health check"], rows)
        self._providers(
            "Request-scoped (opened in each request that uses them, closed after it):",
            listing["request_scoped"],
        )
        self._providers("Other providers:", listing["providers"])
        if results is not None:
            write("")
            write("Health checks, with every resource open:")
            rows = [
                [
                    result.name,
                    self.style.SUCCESS(result.status)
                    if result.ok
                    else self.style.ERROR(result.status),
                    "-" if result.latency is None else f"{result.latency * 1000:.1f} ms",
                    result.check or "open; no check",
                    redact(result.error or ""),
                ]
                for result in results
            ]
            self._table(["resource", "status", "latency", "check", "error"], rows)
        self._request_path(listing["request_path"])

    def _request_path(self, path: dict[str, Any]) -> None:
        """Whether requests start a thread, and what makes them (see ``request_path``)."""
        write = self.stdout.write
        write("")
        if not path["fast_path"]:
            write(
                "Request path: Django's own (FAST_PATH is False): every request starts a "
                "thread for its sync work."
            )
        elif not path["causes"]:
            write(
                "Request path: no middleware or receiver makes requests start a thread. A "
                "request starts one for sync work of its own: a sync view, a sync_to_async "
                "call (the ORM's async methods, middleware that calls it), a "
                "TemplateResponse, a FileResponse, a sync iterator, uploaded files."
            )
        else:
            write(
                "Request path: every request starts a thread (Django's, for the request's "
                "sync work), because:"
            )
            for cause in path["causes"]:
                write(f"  {cause}")
            write(
                "Async views need no thread once these are async or gone; Django's own "
                "middleware are sync (see Performance in the docs)."
            )

    def _providers(self, title: str, entries: list[dict[str, Any]]) -> None:
        """A section of providers with what each depends on (nothing when empty)."""
        if not entries:
            return
        self.stdout.write("")
        self.stdout.write(title)
        rows = [
            [entry["name"], entry["kind"], ", ".join(entry["depends_on"]) or "-"]
            for entry in entries
        ]
        self._table(["provider", "kind", "depends on"], rows)

    def _table(self, header: list[str], rows: list[list[str]]) -> None:
        widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            self.stdout.write("  " + "  ".join(cells).rstrip())


def request_path() -> dict[str, Any]:
    """The handler's request path, as data.

    ``fast_path`` is the setting; ``causes`` what makes every request start a thread
    (empty: async views need none).
    """
    fast = fast_path()
    causes = thread_causes(LifespanHandler) if fast else []
    return {"fast_path": fast, "thread_per_request": not fast or bool(causes), "causes": causes}


def describe(container: containers.Container, lifecycle: ResourceLifecycle) -> dict[str, Any]:
    """The container's providers as data: resources in start order, then the others."""
    names = provider_paths(container.providers)
    stages = {
        name: number for number, stage in enumerate(lifecycle.graph.stages, 1) for name in stage
    }
    resources = [
        {
            "name": name,
            "stage": stages.get(name),  # None: in a cycle (E013), it never opens
            "opens": "in a worker thread"
            if lifecycle.opens_in_thread(name)
            else "on the event loop",
            "depends_on": sorted(_dependencies(lifecycle.provider(name), names)),
            "health_check": _planned(container, name, lifecycle.provider(name)),
        }
        for name in lifecycle.names
    ]
    others = [
        (
            isinstance(provider, RequestResource | CurrentRequest),
            {
                "name": name,
                "kind": type(provider).__name__,
                "depends_on": sorted(_dependencies(provider, names)),
            },
        )
        for provider, name in names.items()
        if not isinstance(provider, providers.Resource | providers.Container)
    ]
    parent = container_class(container)
    return {
        "container": f"{parent.__module__}.{parent.__qualname__}",
        "resources": resources,
        "request_scoped": [entry for scoped, entry in others if scoped],
        "providers": [entry for scoped, entry in others if not scoped],
    }


def _planned(
    container: containers.Container, name: str, provider: providers.Provider[Any]
) -> str | None:
    """The label of the check resource ``name`` gets (``None``: none), before it opens."""
    planned = planned_check(container, name, provider)
    return planned.label if planned.known else UNKNOWN_CHECK


def _with_checks_seen(listing: dict[str, Any], results: list[CheckResult]) -> None:
    """Correct the listing's checks with the ones that ran on the open resources."""
    seen = {
        result.name: result.check
        for result in results
        if result.check is not None or (result.ok and result.latency is None)
    }
    for resource in listing["resources"]:
        if resource["name"] in seen:
            resource["health_check"] = seen[resource["name"]]


def _dependencies(
    provider: providers.Provider[Any], names: dict[providers.Provider[Any], str]
) -> Iterator[str]:
    """The named providers ``provider`` uses, looking through its unnamed inline ones."""
    if isinstance(provider, providers.Configuration):
        return  # its "related" providers are its own options
    seen: set[int] = set()
    pending = list(provider.related)
    while pending:
        related = pending.pop()
        if id(related) in seen:
            continue
        seen.add(id(related))
        if isinstance(related, providers.ConfigurationOption):
            yield related.get_name()
        elif related in names:
            yield names[related]
        else:
            pending.extend(related.related)
