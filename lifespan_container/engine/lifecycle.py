"""The life of a container's resources: ordered, concurrent, all-or-nothing, bounded.

A resource opens after what it depends on and closes before it; independent
resources open and close concurrently; sync ones in worker threads. Startup is
all or nothing; shutdown never stops half way and is bounded. Each open, close
and failure is a log record on ``lifespan_container.resources`` and a
:class:`ResourceEvent` for the listener. The guards (:mod:`.guard`) hand the
values out; an override a test puts on top of one wins, and is not opened.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dependency_injector import providers

from lifespan_container.engine.closing import close_when_opened, resource_step, wait_for_closes
from lifespan_container.engine.events import Reporter, ResourceEvent, fields, logger
from lifespan_container.engine.graph import ResourceGraph, ResourceNode, is_async_result
from lifespan_container.engine.guard import Advice, Guard, Handle, open_in_thread
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.steps import Failure, Tracker, run_concurrently, timed_out
from lifespan_container.exceptions import ResourcesNotStartedError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from dependency_injector import containers

__all__ = ["ResourceEvent", "ResourceLifecycle", "resource_step"]


class ResourceLifecycle:
    """Opens and closes every ``Resource`` provider of ``container``.

    Create one per container instance: it installs its guards on the container's
    resource providers when it is created. ``listener`` is awaited with a
    :class:`ResourceEvent` after each resource opened, closed or failed to; what
    it raises is logged and changes nothing. ``advice`` is appended to the errors
    the guards raise (what to do, where the lifecycle runs).
    """

    def __init__(
        self,
        container: containers.Container,
        listener: Callable[[ResourceEvent], Awaitable[None]] | None = None,
        *,
        advice: Advice | None = None,
    ) -> None:
        self.container = container
        self.graph = ResourceGraph(container)
        self.guard = Guard(
            frozenset(n for n, node in self.graph.nodes.items() if not node.in_thread),
            advice or Advice(),
        )
        self._reporter = Reporter(listener)
        self._opened: list[str] = []
        self._threads: dict[str, asyncio.Future[Any]] = {}
        self._opening_since: dict[str, float] = {}
        self._started = False
        self._guards: dict[str, providers.Provider[Any]] = {}
        for name, node in self.graph.nodes.items():
            self._guards[name] = providers.Callable(self.guard.hand_out, name)
            # The guard returns plain values; async mode would wrap them in Futures.
            node.provider.disable_async_mode()
            node.provider.override(self._guards[name])

    # -- what it is ----------------------------------------------------------------------

    @property
    def listener(self) -> Callable[[ResourceEvent], Awaitable[None]] | None:
        """What is awaited with each :class:`ResourceEvent` (may be replaced)."""
        return self._reporter.listener

    @listener.setter
    def listener(self, listener: Callable[[ResourceEvent], Awaitable[None]] | None) -> None:
        self._reporter.listener = listener

    @property
    def names(self) -> tuple[str, ...]:
        """The resource names (attribute paths on the container), in start order."""
        return self.graph.order

    @property
    def cycles(self) -> dict[str, tuple[str, ...]]:
        """Each resource that depends on itself -> the path back to it, by name."""
        return self.graph.cycles

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the resources were opened in, while any of them is open."""
        return self.guard.loop

    def provider(self, name: str) -> providers.Resource[Any]:
        """The container's provider of the resource ``name``."""
        return self.graph.nodes[name].provider

    def opens_in_thread(self, name: str) -> bool:
        """Whether the resource ``name`` opens and closes in a worker thread (sync)."""
        return self.graph.nodes[name].in_thread

    def dependencies(self, name: str) -> tuple[str, ...]:
        """The resources ``name`` depends on, directly or through other providers."""
        return self.graph.nodes[name].depends_on

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
        return self.graph.nodes[name].provider.last_overriding is not self._guards[name]

    def is_open(self, name: str) -> bool:
        """Whether the resource ``name`` is open now."""
        return name in self.guard.values

    # -- startup -------------------------------------------------------------------------

    async def start(
        self, tracker: Tracker | None = None, *, timeout: Limit | float | None = None
    ) -> list[Failure]:
        """Open every resource within ``timeout`` seconds; return the failures.

        On failure (or when ``timeout`` passes, if given), the resources still
        opening are cancelled and the ones already open stay open: call
        :meth:`stop` to close them. A resource overridden by a test is not opened.
        """
        if self.in_use:
            msg = "The container's resources are already open; stop() them before start()."
            raise RuntimeError(msg)
        if self.cycles:
            return [
                Failure(resource_step(name), reason=f"depends on itself: {' -> '.join(path)}")
                for name, path in self.cycles.items()
            ]
        tracker = tracker or Tracker()
        limit = _as_limit(timeout)
        self.guard.loop = asyncio.get_running_loop()
        ready = {name: asyncio.Event() for name in self.graph.nodes}
        in_thread = sum(node.in_thread for node in self.graph.nodes.values())
        executor = ThreadPoolExecutor(in_thread, "lifespan-resource") if in_thread else None
        try:
            async with asyncio.timeout(limit.seconds if limit else None):
                failures = await run_concurrently(
                    [
                        (
                            resource_step(name),
                            self._open(self.graph.nodes[name], ready, tracker, executor),
                        )
                        for name in self.graph.order
                    ],
                    fail_fast=True,
                )
        except TimeoutError:
            if limit is None:  # pragma: no cover (steps' own errors are failures)
                raise
            failures = timed_out(tracker, limit)
        except BaseException:
            self._release_loop_if_idle()  # cancelled: keep the loop only for what is open
            raise
        finally:
            if executor is not None:
                executor.shutdown(wait=False)
        self._started = not failures
        self._release_loop_if_idle()
        return failures

    async def _open(
        self,
        node: ResourceNode,
        ready: dict[str, asyncio.Event],
        tracker: Tracker,
        executor: ThreadPoolExecutor | None,
    ) -> None:
        for name in node.depends_on:
            await ready[name].wait()
        if self.overridden(node.name):
            logger.info(
                "Resource %r is overridden: not opened.",
                node.name,
                extra=fields(node.name, "start", "overridden", 0.0),
            )
            ready[node.name].set()
            return
        # The step covers the signal too, so that a slow receiver is named in a timeout.
        with tracker.step(resource_step(node.name)):
            started = self._opening_since[node.name] = time.perf_counter()
            try:
                value = await self._init(node, executor)
            except asyncio.CancelledError:
                if node.name not in self._threads:  # else reported when it is collected
                    await self._reporter.report(node.name, "start", "cancelled", started)
                raise
            except BaseException as exc:
                await self._reporter.report(node.name, "start", "failed", started, exc)
                raise
            self.guard.values[node.name] = value
            self._opened.append(node.name)
            ready[node.name].set()
            await self._reporter.report(node.name, "start", "ok", started)

    async def _init(self, node: ResourceNode, executor: ThreadPoolExecutor | None) -> object:
        provider = node.provider
        # Take the guard off for the real initialisation, and put it back after. Async
        # mode is on while it opens, so that awaitable arguments (a Coroutine or an
        # async Factory) are awaited; off after, so the guard hands out plain values.
        provider.reset_last_overriding()
        provider.reset_async_mode()
        try:
            if not node.in_thread:
                value = provider.init()
                return await value if is_async_result(value) else value
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                executor,
                functools.partial(
                    contextvars.copy_context().run, open_in_thread, loop, provider.init
                ),
            )
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # A thread cannot be stopped: stop() closes what it opens when it ends.
                self._threads[node.name] = future
                raise
        finally:
            provider.disable_async_mode()
            provider.override(self._guards[node.name])

    # -- shutdown ------------------------------------------------------------------------

    async def stop(
        self, timeout: Limit | float, tracker: Tracker | None = None, *, limit: str = ""
    ) -> list[Failure]:
        """Close every open resource within ``timeout`` seconds; return the failures.

        ``limit`` names the time limit in failure reasons (default: the seconds);
        a :class:`~lifespan_container.engine.limits.Limit` carries its own name.

        A resource closes after the open resources that depend on it, and
        independent resources close concurrently. A failing close is logged with
        its traceback and does not stop the others. When ``timeout`` passes, the
        closes still running are cancelled and reported with the ones left waiting.
        """
        bound = timeout if isinstance(timeout, Limit) else Limit(timeout, limit)
        tracker = tracker or Tracker()
        deadline = asyncio.get_running_loop().time() + bound.seconds
        self._started = False
        # A sync resource still opening in its thread is closed if it opens; what it
        # depends on waits for that, half of the limit at most, then closes anyway.
        cutoff = deadline - bound.seconds / 2
        threads, self._threads = self._threads, {}
        late = {
            name: asyncio.ensure_future(self._close_late(name, future, tracker))
            for name, future in threads.items()
        }
        failures = await self._close_opened(deadline, cutoff, tracker, bound, late)
        self._release_loop_if_idle()
        return failures

    def _release_loop_if_idle(self) -> None:
        """Forget the loop once nothing is open or opening any more."""
        if not self._opened and not self._threads:
            self.guard.loop = None

    async def _close_opened(
        self,
        deadline: float,
        cutoff: float,
        tracker: Tracker,
        limit: Limit,
        late: Mapping[str, asyncio.Future[None]],
    ) -> list[Failure]:
        closing: dict[str, asyncio.Future[None]] = dict(late)
        dependents = self.graph.dependents([*self._opened, *late])
        # Dependents first (reverse start order), so each can be waited for.
        for name in sorted(self._opened, key=self.graph.order.index, reverse=True):
            waits_for = [closing[d] for d in dependents[name] if d not in late]
            late_ones = [late[d] for d in dependents[name] if d in late]
            closing[name] = asyncio.ensure_future(
                self._close(self.graph.nodes[name], waits_for, tracker, (late_ones, cutoff))
            )
        # Reported in reverse start order, not completion order, so reports are stable.
        ordered = {n: closing[n] for n in sorted(closing, key=self.graph.order.index, reverse=True)}
        return await wait_for_closes(deadline, ordered, tracker, limit, quiet=set(late))

    async def _close(
        self,
        node: ResourceNode,
        waits_for: list[asyncio.Future[None]],
        tracker: Tracker,
        late: tuple[list[asyncio.Future[None]], float] = ([], 0.0),
    ) -> None:
        """Close ``node`` after ``waits_for``, and after ``late`` ones until their cut-off."""
        if waits_for:
            await asyncio.wait(waits_for)
        late_ones, cutoff = late
        if late_ones:
            left = cutoff - asyncio.get_running_loop().time()
            await asyncio.wait(late_ones, timeout=max(left, 0.0))
        with tracker.step(resource_step(node.name)):
            started = time.perf_counter()
            self.guard.values.pop(node.name, None)
            self._opened.remove(node.name)
            try:
                if node.in_thread:
                    await asyncio.to_thread(node.provider.shutdown)
                else:
                    result = node.provider.shutdown()
                    if is_async_result(result):
                        await result
            except asyncio.CancelledError:
                await self._reporter.report(node.name, "stop", "cancelled", started)
                raise
            except BaseException as exc:
                await self._reporter.report(node.name, "stop", "failed", started, exc)
                raise
            await self._reporter.report(node.name, "stop", "ok", started)

    async def _close_late(self, name: str, future: asyncio.Future[Any], tracker: Tracker) -> None:
        """Wait for a sync resource whose opening was cancelled; close it if it opened.

        Nothing open depends on it (its dependents wait for it to open); what it
        depends on waits for this until a cut-off. Cancelled when the stop limit
        passes: a thread cannot be stopped, so the resource is logged, and closed in
        a thread of its own if it opens after all.
        """
        report = self._reporter.report
        started = self._opening_since[name]
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            await report(name, "start", "cancelled", started)
            logger.error(
                "Resource %r is still opening in its thread; it cannot be closed now. If it "
                "opens, it is closed at once, in a thread of its own.",
                name,
                extra=fields(name, "start", "cancelled", time.perf_counter() - started),
            )
            provider = self.graph.nodes[name].provider
            future.add_done_callback(functools.partial(close_when_opened, provider, name))
            raise
        if future.cancelled():
            await report(name, "start", "cancelled", started)
        elif future.exception() is not None:
            await report(name, "start", "failed", started, future.exception())
        else:
            self.guard.values[name] = future.result()
            self._opened.append(name)
            try:
                await report(name, "start", "ok", started)
            finally:  # closed even if the limit passes while a listener is slow
                await self._close(self.graph.nodes[name], [], tracker)

    # -- handing resources out -----------------------------------------------------------

    def hand_out(self, name: str) -> object:
        """The open value of the resource ``name``, after every check (the guard's)."""
        return self.guard.hand_out(name)

    def fast_path(self, provider: providers.Provider[Any]) -> Handle | None:
        """What ``@inject`` needs to hand ``provider``'s open value out without calling it.

        ``None`` if ``provider`` is not a resource of this lifecycle. See
        :class:`~lifespan_container.engine.guard.Handle` for the rules.
        """
        name = self.graph.name_of(provider)
        if name is None:
            return None
        return Handle(
            name, self._guards[name], self.guard, self.guard.values, name in self.guard.loop_bound
        )

    def current(self, name: str) -> object:
        """What the container gives for resource ``name`` now, never opening it.

        A test's override when there is one; otherwise the open value, after the
        guard's checks. While the resource is closed, or still opening (its guard is
        off then), this raises :class:`ResourcesNotStartedError`.
        """
        provider = self.graph.nodes[name].provider
        overriding = provider.last_overriding
        if overriding is None or overriding is self._guards[name]:
            return self.hand_out(name)
        if isinstance(overriding, providers.Resource) and not overriding.initialized:
            msg = f"Resource {name!r} is overridden by a resource that is not open."
            raise ResourcesNotStartedError(msg)
        return provider()


def _as_limit(timeout: Limit | float | None) -> Limit | None:
    return timeout if isinstance(timeout, Limit) or timeout is None else Limit(timeout)
