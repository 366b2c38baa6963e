"""The life of a container's resources: ordered, concurrent, all-or-nothing, bounded.

:class:`ResourceLifecycle` opens every ``providers.Resource`` of a
dependency-injector container and closes it again. It imports nothing from
Django, so it can be driven by the ASGI handler, by a test, or by a script.

- **Order.** A resource opens after the resources it depends on (directly or
  through other providers) and closes before them. Independent resources open and
  close concurrently. Sync resources (generator functions, ``resources.Resource``
  subclasses, plain callables) open and close in worker threads, so they neither
  block the event loop nor wait for each other.
- **All or nothing.** The first failure cancels the resources still opening; the
  caller then calls :meth:`ResourceLifecycle.stop`, which closes whatever was
  opened, including a sync resource whose thread finished after the cancellation.
- **Shutdown never stops half way.** A failing close is logged with its traceback
  and the others still close; the whole shutdown is bounded by a timeout and
  every failure is returned together.
- **Observable.** Each open, close and failure is a log record on the
  ``lifespan_container.resources`` logger (with ``resource``, ``action``,
  ``outcome`` and ``duration`` attributes) and a :class:`ResourceEvent` passed to
  the lifecycle's ``listener`` (the Django side turns them into signals).
- **Loop safety.** Each resource provider gets a guard (an overriding provider at
  the bottom of its override stack). It hands out the opened value without any
  ``Future`` wrapping, raises :class:`ResourcesNotStartedError` before startup
  and after shutdown, and :class:`WrongEventLoopError` when a loop-bound (async)
  resource is asked for from another event loop. Overrides a test puts on top of
  the guard win, and an overridden resource is not opened at all.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeGuard

from asgiref.sync import SyncToAsync
from dependency_injector import providers, resources

from lifespan_container._phase import Failure, Tracker, cancel_and_wait, run_concurrently
from lifespan_container._redact import get_logger
from lifespan_container.exceptions import ResourcesNotStartedError, WrongEventLoopError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from dependency_injector import containers

__all__ = ["ResourceEvent", "ResourceLifecycle"]

logger = get_logger("lifespan_container.resources")

OVERRIDDEN: Final = object()
"""What a :meth:`ResourceLifecycle.getter` returns for a provider a test overrides."""

# Threads the lifecycle opens sync resources in: they may use loop-bound resources.
_opening_thread = threading.local()


@dataclass(frozen=True)
class ResourceEvent:
    """One resource opened, closed, or failed to: what a lifecycle's listener receives."""

    name: str
    """The resource's attribute path on the container, e.g. ``db`` or ``infra.cache``."""
    action: Literal["start", "stop"]
    """``start`` when it was opening, ``stop`` when it was closing."""
    outcome: Literal["ok", "failed", "cancelled"]
    """``failed``: it raised ``error``. ``cancelled``: it was cut short (a time limit
    passed, another resource failed, or the server cancelled the lifespan)."""
    duration: float
    """Seconds from the start of the action to its end."""
    error: BaseException | None = None


@dataclass(eq=False)
class _Resource:
    name: str
    provider: providers.Resource[Any]
    depends_on: tuple[str, ...]
    in_thread: bool
    guard: providers.Provider[Any] = field(init=False)

    @property
    def step(self) -> str:
        return _step(self.name)

    @property
    def overridden_by_user(self) -> bool:
        return self.provider.last_overriding is not self.guard


class ResourceLifecycle:
    """Opens and closes every ``Resource`` provider of ``container``.

    Create one per container instance: it installs its guards on the container's
    resource providers when it is created. ``listener`` is awaited with a
    :class:`ResourceEvent` after each resource opened, closed or failed to; what
    it raises is logged and changes nothing.
    """

    def __init__(
        self,
        container: containers.Container,
        listener: Callable[[ResourceEvent], Awaitable[None]] | None = None,
    ) -> None:
        self.container = container
        self.listener = listener
        self._resources = _discover(container)
        self._loop_bound = frozenset(n for n, r in self._resources.items() if not r.in_thread)
        self.cycles: dict[str, tuple[str, ...]] = _cycles(container, self._resources)
        """Each resource that depends on itself -> the path back to it, by name."""
        self._order = _start_order(self._resources)
        self._values: dict[str, object] = {}
        self._opened: list[str] = []
        self._threads: dict[str, asyncio.Future[Any]] = {}
        self._opening_since: dict[str, float] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the resources were opened in, while any of them is open."""
        self._started = False
        for resource in self._resources.values():
            resource.guard = providers.Callable(self.hand_out, resource.name)
            # The guard returns plain values; async mode would wrap them in Futures.
            resource.provider.disable_async_mode()
            resource.provider.override(resource.guard)

    # -- introspection -----------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The resource names (attribute paths on the container), in start order."""
        return self._order

    def provider(self, name: str) -> providers.Resource[Any]:
        """The container's provider of the resource ``name``."""
        return self._resources[name].provider

    def opens_in_thread(self, name: str) -> bool:
        """Whether the resource ``name`` opens and closes in a worker thread (sync)."""
        return self._resources[name].in_thread

    def dependencies(self, name: str) -> tuple[str, ...]:
        """The resources ``name`` depends on, directly or through other providers."""
        return self._resources[name].depends_on

    @property
    def started(self) -> bool:
        """Whether :meth:`start` completed and :meth:`stop` has not run since."""
        return self._started

    @property
    def in_use(self) -> bool:
        """Whether any resource is open or opening (a lifespan is using this lifecycle)."""
        return bool(self._opened or self._threads or self._started)

    def overridden(self, name: str) -> bool:
        """Whether a test overrides the resource ``name`` (it gives another value)."""
        return self._resources[name].overridden_by_user

    def is_open(self, name: str) -> bool:
        """Whether the resource ``name`` is open now."""
        return name in self._values

    # -- startup -----------------------------------------------------------------------

    async def start(self, tracker: Tracker | None = None) -> list[Failure]:
        """Open every resource; return the failures (empty when all opened).

        On failure, the resources still opening are cancelled and the ones already
        open stay open: call :meth:`stop` to close them (the handler always does).
        A resource overridden by a test is not opened.
        """
        if self.in_use:
            msg = "The container's resources are already open; stop() them before start()."
            raise RuntimeError(msg)
        if self.cycles:
            return [
                Failure(_step(name), reason=f"depends on itself: {' -> '.join(path)}")
                for name, path in self.cycles.items()
            ]
        tracker = tracker or Tracker()
        self.loop = asyncio.get_running_loop()
        ready = {name: asyncio.Event() for name in self._resources}
        in_thread = sum(resource.in_thread for resource in self._resources.values())
        executor = ThreadPoolExecutor(in_thread, "lifespan-resource") if in_thread else None
        try:
            failures = await run_concurrently(
                [
                    (resource.step, self._open(resource, ready, tracker, executor))
                    for resource in map(self._resources.__getitem__, self._order)
                ],
                fail_fast=True,
            )
        finally:
            if executor is not None:
                executor.shutdown(wait=False)
        self._started = not failures
        self._release_loop_if_idle()
        return failures

    async def _open(
        self,
        resource: _Resource,
        ready: dict[str, asyncio.Event],
        tracker: Tracker,
        executor: ThreadPoolExecutor | None,
    ) -> None:
        for name in resource.depends_on:
            await ready[name].wait()
        if resource.overridden_by_user:
            logger.info(
                "Resource %r is overridden: not opened.",
                resource.name,
                extra=_fields(resource.name, "start", "overridden", 0.0),
            )
            ready[resource.name].set()
            return
        # The step covers the signal too, so that a slow receiver is named in a timeout.
        with tracker.step(resource.step):
            started = self._opening_since[resource.name] = time.perf_counter()
            try:
                value = await self._init(resource, executor)
            except asyncio.CancelledError:
                if resource.name not in self._threads:  # else reported when it is collected
                    await self._report(resource.name, "start", "cancelled", started)
                raise
            except BaseException as exc:
                await self._report(resource.name, "start", "failed", started, exc)
                raise
            self._values[resource.name] = value
            self._opened.append(resource.name)
            ready[resource.name].set()
            await self._report(resource.name, "start", "ok", started)

    async def _init(self, resource: _Resource, executor: ThreadPoolExecutor | None) -> object:
        provider = resource.provider
        # Take the guard off for the real initialisation, and put it back after. Async
        # mode is on while it opens, so that awaitable arguments (a Coroutine or an
        # async Factory) are awaited; off after, so the guard hands out plain values.
        provider.reset_last_overriding()
        provider.reset_async_mode()
        try:
            if not resource.in_thread:
                value = provider.init()
                return await value if is_async_result(value) else value
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                executor,
                functools.partial(
                    contextvars.copy_context().run, _open_in_thread, loop, provider.init
                ),
            )
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # A thread cannot be stopped: stop() closes what it opens when it ends.
                self._threads[resource.name] = future
                raise
        finally:
            provider.disable_async_mode()
            provider.override(resource.guard)

    # -- shutdown ----------------------------------------------------------------------

    async def stop(
        self, timeout: float, tracker: Tracker | None = None, *, limit: str = ""
    ) -> list[Failure]:
        """Close every open resource within ``timeout`` seconds; return the failures.

        ``limit`` names the time limit in failure reasons (default: the seconds).

        A resource closes after the open resources that depend on it, and
        independent resources close concurrently. A failing close is logged with
        its traceback and does not stop the others. When ``timeout`` passes, the
        closes still running are cancelled and reported with the ones left waiting.
        """
        tracker = tracker or Tracker()
        deadline = asyncio.get_running_loop().time() + timeout
        limit = limit or f"the time limit ({timeout:g} s)"
        self._started = False
        # What is open closes first; a sync resource still opening in its thread is
        # waited for with the time that is left, and closed if it opens.
        failures = await self._close_opened(deadline, tracker, limit)
        if self._threads:
            await self._collect_threads(deadline)
            failures += await self._close_opened(deadline, tracker, limit)
        self._release_loop_if_idle()
        return failures

    def _release_loop_if_idle(self) -> None:
        """Forget the loop once nothing is open or opening any more."""
        if not self._opened and not self._threads:
            self.loop = None

    async def _close_opened(self, deadline: float, tracker: Tracker, limit: str) -> list[Failure]:
        closing: dict[str, asyncio.Task[None]] = {}
        dependents: dict[str, list[str]] = {name: [] for name in self._opened}
        for name in self._opened:
            for dependency in self._resources[name].depends_on:
                if dependency in dependents:
                    dependents[dependency].append(name)
        # Reverse start order, not completion order, so reports list failures stably.
        for name in sorted(self._opened, key=self._order.index, reverse=True):
            waits_for = [closing[d] for d in dependents[name]]
            closing[name] = asyncio.ensure_future(
                self._close(self._resources[name], waits_for, tracker)
            )
        return await _wait_until(deadline, closing, tracker, limit)

    async def _close(
        self, resource: _Resource, waits_for: list[asyncio.Task[None]], tracker: Tracker
    ) -> None:
        if waits_for:
            await asyncio.wait(waits_for)
        with tracker.step(resource.step):
            started = time.perf_counter()
            self._values.pop(resource.name, None)
            self._opened.remove(resource.name)
            try:
                if resource.in_thread:
                    await asyncio.to_thread(resource.provider.shutdown)
                else:
                    result = resource.provider.shutdown()
                    if is_async_result(result):
                        await result
            except asyncio.CancelledError:
                await self._report(resource.name, "stop", "cancelled", started)
                raise
            except BaseException as exc:
                await self._report(resource.name, "stop", "failed", started, exc)
                raise
            await self._report(resource.name, "stop", "ok", started)

    async def _report(
        self,
        name: str,
        action: Literal["start", "stop"],
        outcome: Literal["ok", "failed", "cancelled"],
        started: float,
        error: BaseException | None = None,
    ) -> None:
        """Log what happened to resource ``name`` and pass it to the listener."""
        event = ResourceEvent(name, action, outcome, time.perf_counter() - started, error)
        _log(event)
        if self.listener is None:
            return
        try:
            await self.listener(event)
        except Exception:
            logger.exception("A listener of resource events failed on %r.", event)

    async def _collect_threads(self, deadline: float) -> None:
        """Wait for sync resources whose opening was cancelled, to close them too."""
        threads, self._threads = self._threads, {}
        if not threads:
            return
        loop = asyncio.get_running_loop()
        await asyncio.wait(threads.values(), timeout=max(deadline - loop.time(), 0))
        for name, future in threads.items():
            started = self._opening_since[name]
            if not future.done():
                await self._report(name, "start", "cancelled", started)
                logger.error(
                    "Resource %r is still opening in its thread; it cannot be closed.",
                    name,
                    extra=_fields(name, "start", "cancelled", time.perf_counter() - started),
                )
            elif future.cancelled():
                await self._report(name, "start", "cancelled", started)
            elif future.exception() is not None:
                await self._report(name, "start", "failed", started, future.exception())
            else:
                self._values[name] = future.result()
                self._opened.append(name)
                await self._report(name, "start", "ok", started)

    # -- handing resources out ----------------------------------------------------------

    def fast_path(
        self, provider: providers.Provider[Any]
    ) -> tuple[str, providers.Provider[Any], dict[str, object], bool] | None:
        """What a caller needs to hand out ``provider``'s open value without calling it.

        ``(name, guard, values, loop_bound)``, or ``None`` if ``provider`` is not a
        resource of this lifecycle. The value may be handed out as ``values[name]``
        when ``provider.last_overriding is guard`` (no test overrides it) and, for a
        loop-bound resource, ``here() is lifecycle.loop``. Anything else must go
        through :meth:`hand_out`, which applies every check and raises the right
        error. ``@inject`` inlines this, to cost a few lookups per call.
        """
        resource = next((r for r in self._resources.values() if r.provider is provider), None)
        if resource is None:
            return None
        return resource.name, resource.guard, self._values, resource.name in self._loop_bound

    def current(self, name: str) -> object:
        """What the container gives for resource ``name`` now, never opening it.

        A test's override when there is one; otherwise the open value, after the
        guard's checks. While the resource is closed, or still opening (its guard is
        off then), this raises :class:`ResourcesNotStartedError`.
        """
        provider = self._resources[name].provider
        overriding = provider.last_overriding
        if overriding is None or overriding is self._resources[name].guard:
            return self.hand_out(name)
        if isinstance(overriding, providers.Resource) and not overriding.initialized:
            msg = f"Resource {name!r} is overridden by a resource that is not open."
            raise ResourcesNotStartedError(msg)
        return provider()

    # -- the guard ---------------------------------------------------------------------

    def hand_out(self, name: str) -> object:
        """The open value of the resource ``name``, after every check (the guard's)."""
        try:
            value = self._values[name]
        except KeyError:
            msg = (
                f"Resource {name!r} is not open: the container's resources open in the ASGI "
                "lifespan startup, and it has not run in this process (or shutdown already "
                "ran). Serve the project with an ASGI server that sends the lifespan "
                "(uvicorn with --lifespan on, not --lifespan off; gunicorn with uvicorn's "
                "worker, hypercorn, granian; daphne and WSGI runserver send none); in "
                "development, use `python manage.py runasgi`. In tests, run the code inside "
                "lifespan_container.testing.lifespan() or override the provider."
            )
            raise ResourcesNotStartedError(msg) from None
        if name in self._loop_bound:
            loop = asyncio._get_running_loop()  # noqa: SLF001 (the C fast path, no exception)
            if loop is None:
                loop = _loop_of_this_thread()
                if loop is not self.loop:
                    raise WrongEventLoopError(_wrong_thread_message(name))
            elif loop is not self.loop:
                raise WrongEventLoopError(_wrong_loop_message(name))
        return value


def is_async_result(value: object) -> TypeGuard[Awaitable[Any]]:
    """Whether ``value`` is what a provider returns for a result still to come.

    Exactly dependency-injector's own rule: a coroutine or an ``asyncio`` future.
    Anything else is a value, even one that is awaitable (``redis.asyncio.Redis``
    defines ``__await__``): it is handed over as it is, never awaited or closed.
    """
    # isawaitable first: a cheap "no" for the plain values injection mostly sees.
    return inspect.isawaitable(value) and (asyncio.iscoroutine(value) or asyncio.isfuture(value))


here: Callable[[], object] = asyncio._get_running_loop  # noqa: SLF001
"""The running event loop, or ``None`` in a thread without one (a C function that
never raises). Compared with :attr:`ResourceLifecycle.loop` on every injection."""


def _step(name: str) -> str:
    """How reports and the tracker name the step of resource ``name``."""
    return f"resource {name!r}"


_MESSAGES: Final = {
    ("start", "ok"): (logging.INFO, "Opened resource %r in %.1f ms."),
    ("stop", "ok"): (logging.INFO, "Closed resource %r in %.1f ms."),
    ("start", "failed"): (logging.ERROR, "Resource %r failed to open after %.1f ms."),
    ("stop", "failed"): (logging.ERROR, "Resource %r failed to close after %.1f ms."),
    ("start", "cancelled"): (logging.WARNING, "Opening resource %r was cancelled after %.1f ms."),
    ("stop", "cancelled"): (logging.WARNING, "Closing resource %r was cancelled after %.1f ms."),
}


def _log(event: ResourceEvent) -> None:
    """One record per event; a failure carries the traceback of its error."""
    level, message = _MESSAGES[event.action, event.outcome]
    logger.log(
        level,
        message,
        event.name,
        event.duration * 1000,
        exc_info=event.error,
        extra=_fields(event.name, event.action, event.outcome, event.duration),
    )


def _fields(name: str, action: str, outcome: str, duration: float) -> dict[str, object]:
    """The attributes every record of the resources logger carries."""
    return {"resource": name, "action": action, "outcome": outcome, "duration": duration}


def _open_in_thread(loop: asyncio.AbstractEventLoop, init: Callable[[], object]) -> object:
    _opening_thread.loop = loop
    try:
        return init()
    finally:
        del _opening_thread.loop


def _loop_of_this_thread() -> asyncio.AbstractEventLoop | None:
    """The event loop a worker thread belongs to, if any.

    A sync view under an ASGI server runs in a thread started by asgiref's
    ``SyncToAsync``, which records the serving loop so that ``async_to_sync`` can
    run coroutines there. The lifecycle's own threads record theirs.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(_opening_thread, "loop", None)
    if loop is None:
        loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop


def _wrong_loop_message(name: str) -> str:
    return (
        f"Resource {name!r} belongs to the event loop that ran the lifespan startup, and it "
        "was asked for from another event loop. Django's sync test Client and WSGI runserver "
        "run each async view in a new event loop: use django.test.AsyncClient or the httpx "
        "client from lifespan_container.testing, or override the provider in the test; serve "
        "with an ASGI server that sends the lifespan."
    )


def _wrong_thread_message(name: str) -> str:
    return (
        f"Resource {name!r} belongs to the event loop that ran the lifespan startup, and it "
        "was asked for from a thread that cannot reach that loop (a sync view under WSGI "
        "runserver or Django's sync test Client, or a thread of your own). Under an ASGI "
        "server, sync views run in threads that can: call the resource there through "
        "asgiref.sync.async_to_sync. In tests, use django.test.AsyncClient or override the "
        "provider."
    )


def _discover(container: containers.Container) -> dict[str, _Resource]:
    """Find every Resource provider, named by its attribute path, in declaration order."""
    names = provider_paths(container.providers)
    found: dict[providers.Resource[Any], str] = {
        provider: name
        for provider, name in names.items()
        if isinstance(provider, providers.Resource)
    }
    # Resources nested inside other providers have no attribute name of their own.
    for provider in container.traverse(types=[providers.Resource]):
        if provider not in found:
            found[provider] = _anonymous_name(provider, found.values())
    discovered: dict[str, _Resource] = {}
    for provider, name in found.items():
        reachable = set(provider.traverse(types=[providers.Resource]))
        discovered[name] = _Resource(
            name=name,
            provider=provider,
            depends_on=tuple(found[d] for d in found if d is not provider and d in reachable),
            in_thread=_opens_in_thread(provider),
        )
    return discovered


def provider_paths(
    members: dict[str, providers.Provider[Any]],
    prefix: str = "",
    paths: dict[providers.Provider[Any], str] | None = None,
) -> dict[providers.Provider[Any], str]:
    """Each provider of ``members`` (a container's ``.providers``) -> its attribute path.

    Nested containers give dotted paths (``infra.db``); the first path of a
    provider reachable twice wins. ``paths`` is added to and returned.
    """
    paths = {} if paths is None else paths
    for attribute, provider in members.items():
        paths.setdefault(provider, prefix + attribute)
        if isinstance(provider, providers.Container):
            nested: containers.Container = provider.container
            provider_paths(nested.providers, f"{prefix}{attribute}.", paths)
    return paths


def configuration_of(
    option: providers.ConfigurationOption, roots: dict[str, providers.Configuration]
) -> str | None:
    """Which of ``roots`` (path -> configuration) ``option`` reads from, or ``None``.

    Every ``providers.Configuration()`` is named ``config`` unless given a name, so
    the option's name cannot tell two apart. Its copy can: dependency-injector
    copies an option with its configuration, so a copy whose configuration is
    swapped for one holding a marker value gives that value back only for the
    configuration the option belongs to.
    """
    selector = option.get_name().partition(".")[2]
    for path, root in roots.items():
        probe, marker = providers.Configuration(), object()
        probe.from_dict(_nested(selector, marker))
        try:
            found = copy.deepcopy(option, {id(root): probe})()
        except Exception:  # noqa: BLE001, S112 (another configuration's option: undefined here)
            continue
        if found is marker:
            return path
    return None


def _nested(selector: str, value: object) -> dict[str, Any]:
    *parents, leaf = selector.split(".")
    nested: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        nested = {part: nested}
    return nested


def walk(container: object, path: str) -> providers.Provider[Any] | None:
    """The provider at ``path`` (``"db"``, ``"infra.db"``) of a container or its class."""
    node: object = container
    for part in path.split("."):
        try:
            node = getattr(node, part)
        except AttributeError:
            return None
    return node if isinstance(node, providers.Provider) else None


def _anonymous_name(provider: providers.Resource[Any], taken: Iterable[str]) -> str:
    provides = getattr(provider.provides, "__wrapped__", provider.provides)
    base = f"<{getattr(provides, '__qualname__', type(provides).__name__)}>"
    taken = set(taken)
    name, index = base, 2
    while name in taken:
        name, index = f"{base}#{index}", index + 1
    return name


def _opens_in_thread(provider: providers.Resource[Any]) -> bool:
    """Whether opening ``provider`` is sync work, to be done off the event loop.

    Only what is known to be sync goes to a thread: generator functions, sync
    ``resources.Resource`` subclasses and sync context manager classes. Plain
    callables open on the loop, since they may return an awaitable or an async
    context manager (``redis.asyncio.from_url``, ``asyncpg.create_pool``). A
    dependency that is a coroutine needs the loop too.
    """
    provides: Any = provider.provides
    wrapped = getattr(provides, "__wrapped__", None)
    sync = inspect.isgeneratorfunction(wrapped) or (
        isinstance(provides, type)
        and (
            issubclass(provides, resources.Resource)
            or (hasattr(provides, "__enter__") and not hasattr(provides, "__aenter__"))
        )
    )
    dependencies: list[providers.Provider[Any]] = list(provider.traverse())
    return sync and not any(
        isinstance(dependency, providers.Coroutine)
        or inspect.iscoroutinefunction(getattr(dependency, "provides", None))
        for dependency in dependencies
        if not isinstance(dependency, providers.Resource)
    )


def _cycles(
    container: containers.Container, found: dict[str, _Resource]
) -> dict[str, tuple[str, ...]]:
    names = provider_paths(container.providers)
    cycles = {name: find_cycle(resource.provider, names) for name, resource in found.items()}
    return {name: path for name, path in cycles.items() if path is not None}


def find_cycle(
    start: providers.Provider[Any], names: dict[providers.Provider[Any], str]
) -> tuple[str, ...] | None:
    """A path from ``start`` back to itself through what it depends on, or ``None``.

    Dependencies are followed through every kind of provider (arguments, keyword
    arguments, attributes, what a provider provides). A step is named by the
    provider's attribute path, or else by the argument that holds it:
    ``("a", "dep", "a")`` for ``a = Resource(f, dep=Factory(dict, x=a))``.
    """
    path = [names.get(start, "?")]
    stack = [iter(_edges(start))]
    on_path: list[providers.Provider[Any]] = [start]
    done: set[providers.Provider[Any]] = set()
    while stack:
        for label, child in stack[-1]:
            if child is start:
                return (*path, names.get(child, label))
            if child not in done and child not in on_path:
                path.append(names.get(child, label))
                on_path.append(child)
                stack.append(iter(_edges(child)))
                break
        else:  # every dependency of the last one explored: it cannot lead back
            stack.pop()
            path.pop()
            done.add(on_path.pop())
    return None


def _edges(provider: providers.Provider[Any]) -> list[tuple[str, providers.Provider[Any]]]:
    """``(how provider holds it, dependency)`` for each provider ``provider`` depends on."""
    found: dict[providers.Provider[Any], str] = {}
    held: list[tuple[object, object]] = []
    kind = type(provider)  # not the instance: a Configuration makes an option of any name
    for name in ("kwargs", "attributes"):
        mapping = getattr(provider, name) if hasattr(kind, name) else None
        if isinstance(mapping, dict):
            held += mapping.items()
    arguments = provider.args if hasattr(kind, "args") else None  # type: ignore[attr-defined]
    if isinstance(arguments, tuple):
        held += [(f"argument {index}", value) for index, value in enumerate(arguments, 1)]
    for label, value in held:
        if isinstance(value, providers.Provider):
            found.setdefault(value, str(label))
    for value in provider.related:
        found.setdefault(value, type(value).__name__)
    return [(label, value) for value, label in found.items()]


def _start_order(found: dict[str, _Resource]) -> tuple[str, ...]:
    """Resource names with every resource after the ones it depends on.

    Resources in a cycle cannot be ordered: they come last, in declaration order
    (the lifecycle refuses to start them; see ``ResourceLifecycle.cycles``).
    """
    order: list[str] = []
    placed: set[str] = set()
    remaining = dict(found)
    while remaining:
        ready = [
            name
            for name, resource in remaining.items()
            if all(dependency in placed for dependency in resource.depends_on)
        ] or list(remaining)
        for name in ready:
            order.append(name)
            placed.add(name)
            del remaining[name]
    return tuple(order)


async def _wait_until(
    deadline: float,
    closing: dict[str, asyncio.Task[None]],
    tracker: Tracker,
    limit: str,
) -> list[Failure]:
    """Wait for the closes until ``deadline``; cancel the rest; failures in closing order."""
    loop = asyncio.get_running_loop()
    if closing:
        await asyncio.wait(closing.values(), timeout=max(deadline - loop.time(), 0))
    hung = set(tracker.running)
    timed_out = {name: task for name, task in closing.items() if not task.done()}
    await cancel_and_wait(list(timed_out.values()))
    failures: list[Failure] = []
    for name, task in closing.items():
        step = _step(name)
        if name in timed_out:
            reason = (
                f"did not close within {limit}"
                if step in hung
                else f"was not closed: {limit} passed before its turn"
            )
            failures.append(Failure(step, reason=reason))
        elif not task.cancelled() and task.exception() is not None:
            failures.append(Failure(step, task.exception()))
    return failures
