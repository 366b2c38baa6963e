"""Lifespan managers: async context managers whose mappings fill the lifespan state.

A *factory* is a zero-argument callable giving an async context manager (an
``@asynccontextmanager`` function); what the manager yields is a mapping merged
into the lifespan state. This is django-asgi-lifespan's concept, held to the rules
of the rest of the lifecycle:

enter (startup, after the resources opened)
    Every factory once (the same factory given twice is entered once), the managers
    concurrently, each a step named by its factory (``module.qualname``). A manager
    that yields something other than a mapping, or two managers that yield the same
    key, fail the startup. All or nothing: when anything fails, every manager
    already entered is exited again; the state is filled only when all succeeded.

exit (shutdown, before the resources close)
    In the reverse order of the factories (last entered, first exited), every one
    even when another's exit fails; bounded by a limit, after which the managers
    not reached are named. The failures are returned together.

Nothing here imports Django: the Django layer collects the factories (its
registry and the ``asgi_lifespan`` signal) and hands them to
:class:`LifespanManagers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from lifespan_container._redact import get_logger
from lifespan_container.engine.limits import Limit
from lifespan_container.engine.steps import Failure, Tracker, qualified_name, run_concurrently

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
    from contextlib import AbstractAsyncContextManager

__all__ = ["Collect", "Factories", "Factory", "LifespanManagers", "manager_step"]

logger = get_logger("lifespan_container")

Factory: TypeAlias = "Callable[[], AbstractAsyncContextManager[Any]]"
"""A zero-argument callable giving an async context manager that yields a mapping."""

Collect: TypeAlias = "Callable[[Tracker], Awaitable[tuple[list[Factory], list[Failure]]]]"
"""Gives the factories of one startup, and the failures met finding them."""


def manager_step(factory: Factory) -> str:
    """How failures, logs and the tracker name the manager made by ``factory``."""
    return f"lifespan manager {qualified_name(factory)!r}"


class Factories:
    """Registered factories, each once, in the order of their first registration."""

    def __init__(self) -> None:
        self._factories: dict[Factory, None] = {}

    def add(self, factory: Factory) -> None:
        """Register ``factory``; registering it again changes nothing."""
        given: object = factory  # checked at run time: users pass anything
        if not callable(given):
            msg = (
                f"A lifespan manager is a zero-argument callable giving an async context "
                f"manager (an @asynccontextmanager function), not {factory!r}."
            )
            raise TypeError(msg)
        self._factories[factory] = None

    def remove(self, factory: Factory) -> None:
        """Forget ``factory`` (nothing happens if it is not registered)."""
        self._factories.pop(factory, None)

    def clear(self) -> None:
        """Forget every factory."""
        self._factories.clear()

    def __iter__(self) -> Iterator[Factory]:
        return iter(list(self._factories))

    def __len__(self) -> int:
        return len(self._factories)

    def __contains__(self, factory: object) -> bool:
        return factory in self._factories


class LifespanManagers:
    """The managers of one lifespan: entered at its startup, exited at its shutdown.

    ``state`` is the lifespan state the mappings are merged into. ``factories`` are
    entered; ``collect``, if given, is awaited at startup for more (and for the
    failures met finding them, which fail the startup).
    """

    def __init__(
        self,
        state: MutableMapping[str, Any],
        factories: Iterable[Factory] = (),
        collect: Collect | None = None,
    ) -> None:
        self.state = state
        self._factories = list(factories)
        self._collect = collect
        self._entered: list[tuple[str, AbstractAsyncContextManager[Any]]] = []
        self.keys: dict[str, str] = {}
        """Each key the managers put into the state -> the step of its manager."""

    @property
    def entered(self) -> list[str]:
        """The managers entered and not yet exited, in the order they were given."""
        return [step for step, _ in self._entered]

    async def enter(self, tracker: Tracker) -> list[Failure]:
        """Enter every manager concurrently and merge their mappings; all or nothing.

        On failure the managers entered so far stay recorded, for :meth:`exit` to
        exit (the lifespan rolls back); the state is left untouched.
        """
        factories = list(self._factories)
        if self._collect is not None:
            found, failures = await self._collect(tracker)
            if failures:
                return failures
            factories += found
        unique = list(dict.fromkeys(factories))
        if not unique:
            return []
        entered: dict[int, tuple[AbstractAsyncContextManager[Any], object]] = {}

        async def enter_one(index: int, factory: Factory) -> None:
            step = manager_step(factory)
            with tracker.step(step):
                try:
                    manager = factory()
                    value = await manager.__aenter__()
                except Exception:
                    logger.exception("The %s failed to enter.", step)
                    raise
                entered[index] = (manager, value)  # recorded at once: exited whatever follows

        steps = [
            (manager_step(factory), enter_one(index, factory))
            for index, factory in enumerate(unique)
        ]
        try:
            failures = await run_concurrently(steps, fail_fast=True)
        finally:
            # In the order of the factories, whatever happened: exit() reverses it.
            self._entered = [
                (manager_step(unique[index]), entered[index][0]) for index in sorted(entered)
            ]
        if failures:
            return failures
        return self._merge([(manager_step(unique[i]), entered[i][1]) for i in sorted(entered)])

    def _merge(self, values: list[tuple[str, object]]) -> list[Failure]:
        """Merge the mappings into the state: none may be anything else, no key twice."""
        merged: dict[str, Any] = {}
        owners: dict[str, str] = {}
        failures: list[Failure] = []
        for step, value in values:
            if not isinstance(value, Mapping):
                reason = (
                    f"yielded {type(value).__name__}, not a mapping: a lifespan manager "
                    "yields a dict of the values it adds to the lifespan state"
                )
                failures.append(Failure(step, reason=reason))
                continue
            for key, item in value.items():
                if key in owners:
                    failures.append(
                        Failure(
                            f"lifespan managers {_name(owners[key])} and {_name(step)}",
                            reason=(
                                f"both yielded the key {key!r} (each key of the lifespan "
                                "state comes from one manager: rename one of them)"
                            ),
                        )
                    )
                    continue
                owners[key] = step
                merged[key] = item
        if not failures:
            self.state.update(merged)
            self.keys = owners
        return failures

    async def exit(self, limit: Limit, tracker: Tracker | None = None) -> list[Failure]:
        """Exit every entered manager, last first, within ``limit``; return the failures.

        A failing exit is logged and does not stop the others. Each exit may use what
        is left of ``limit``, less a reserve for each manager after it (half of an
        equal share of what is left): a slow exit gets most of the time, and one that
        hangs is cancelled with time still kept for the managers after it.
        """
        tracker = tracker or Tracker()
        entered, self._entered = list(reversed(self._entered)), []
        self.keys = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit.seconds
        failures: list[Failure] = []
        for position, (step, manager) in enumerate(entered):
            left = max(deadline - loop.time(), 0.0)
            after = len(entered) - position - 1  # the managers still to exit after it
            reserve = left / (2 * (after + 1)) * after
            exiting = _exit_one(step, manager, tracker)
            failures += await run_concurrently(
                [(step, exiting)], fail_fast=False, timeout=_own(left - reserve, limit, after)
            )
        return failures


def _own(seconds: float, limit: Limit, after: int) -> Limit:
    """How a failure names the time of an exit with ``after`` managers still to exit."""
    if not after:
        return Limit(seconds, str(limit))
    return Limit(seconds, f"{seconds:g} s of {limit}, the rest kept for the managers after it")


def _name(step: str) -> str:
    """The quoted factory name of a manager's step."""
    return step.removeprefix("lifespan manager ")


async def _exit_one(step: str, manager: AbstractAsyncContextManager[Any], tracker: Tracker) -> None:
    with tracker.step(step):
        try:
            await manager.__aexit__(None, None, None)
        except Exception:
            logger.exception("The %s failed to exit.", step)
            raise
