"""The guard: hands an open resource out, only where it may be used.

Each resource provider gets a guard (an overriding provider at the bottom of its
override stack). It hands out the opened value without any ``Future`` wrapping,
raises :class:`ResourcesNotStartedError` before startup and after shutdown, and
:class:`WrongEventLoopError` when a loop-bound (async) resource is asked for
from another event loop, or from a thread that cannot reach its loop. Overrides
a test puts on top of the guard win.

The messages say what happened; what to do about it depends on where the engine
runs (which servers, which test clients), so the layer above passes that as
:class:`Advice`.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Self

from asgiref.sync import SyncToAsync

from lifespan_container.exceptions import ResourcesNotStartedError, WrongEventLoopError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dependency_injector import providers

__all__ = [
    "CHECK_BY_THREAD",
    "Advice",
    "Guard",
    "Handle",
    "here",
    "open_in_thread",
    "this_thread",
]


@dataclass(frozen=True)
class Advice:
    """What to do, appended to the guard's and the lifespan's error messages."""

    not_open: str = ""
    """When a resource is asked for while it is not open."""
    wrong_loop: str = ""
    """When a loop-bound resource is asked for from another event loop."""
    wrong_thread: str = ""
    """When it is asked for from a thread that cannot reach its loop."""
    already_open: str = ""
    """When a second lifespan starts while the resources are open."""


class Handle(NamedTuple):
    """What ``@inject`` needs to hand a resource out without calling its provider.

    The value may be taken as ``values[name]`` when ``provider.last_overriding is
    overriding`` (no test overrides it) and, if ``loop_bound``, when :func:`here`
    is ``guard.loop``. Anything else must go through ``guard.hand_out(name)``,
    which applies every check and raises the right error. ``values`` is the
    guard's own dict, shared so that a lookup costs nothing: read it, never change
    it. ``guard.cell(name)`` gives the value as ``cell[0]``, cheaper still.
    """

    name: str
    overriding: providers.Provider[Any]
    """The provider the guard put at the bottom of the resource's override stack."""
    guard: Guard
    values: dict[str, object]
    loop_bound: bool


here: Callable[[], object] = asyncio._get_running_loop  # noqa: SLF001
"""The running event loop, or ``None`` in a thread without one (a C function that
never raises). Compared with :attr:`Guard.loop` by :meth:`Guard.hand_out`."""

this_thread: Callable[[], int] = threading.get_ident
"""The ident of the calling thread: ``@inject``'s loop check on Python 3.11.

``this_thread() == getattr(guard.loop, "_thread_id", None)`` holds exactly when
``here() is guard.loop``: asyncio's loops note the thread they run in while they run,
and one thread runs one loop at a time. On Python 3.11, whose ``_get_running_loop()``
makes a ``getpid()`` call, it costs a fraction of ``here()``; from 3.12 on ``here()``
is the cheaper. Where it does not hold (another loop or thread, or a loop that notes
no thread, such as uvloop's), :meth:`Guard.hand_out` decides, with every check."""

CHECK_BY_THREAD: Final = sys.version_info < (3, 12)
"""Whether ``@inject``'s loop check compares threads (3.11) or loops (3.12 and on)."""


class _Values(dict[str, object]):
    """The guard's open values by name, with each resource's cell kept in step.

    A cell (see :meth:`Guard.cell`) holds ``[value]`` while the resource is open
    and ``[]`` otherwise, whoever writes the values. A cell is emptied before its
    value leaves, and filled after it arrives: a cell never holds a value that is
    not here. Writes are rare (startup, shutdown) and take a lock; reads take none.
    """

    __slots__ = ("_cells", "_lock")

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._cells: dict[str, list[object]] = {}

    def cell(self, name: str) -> list[object]:
        with self._lock:
            cell = self._cells.get(name)
            if cell is None:
                cell = self._cells[name] = [dict.__getitem__(self, name)] if name in self else []
            return cell

    def _empty(self, name: str) -> None:
        cell = self._cells.get(name)
        if cell:
            cell.clear()

    def _fill(self, name: str) -> None:
        cell = self._cells.get(name)
        if cell is not None:
            cell[:] = [dict.__getitem__(self, name)]

    def __setitem__(self, name: str, value: object) -> None:
        with self._lock:
            self._empty(name)
            super().__setitem__(name, value)
            self._fill(name)

    def __delitem__(self, name: str) -> None:
        with self._lock:
            self._empty(name)
            super().__delitem__(name)

    def pop(self, name: str, *default: Any) -> Any:
        with self._lock:
            self._empty(name)
            return super().pop(name, *default)

    def popitem(self) -> tuple[str, object]:
        with self._lock:
            if not self:
                msg = "popitem(): dictionary is empty"
                raise KeyError(msg)
            name = next(reversed(self))  # the one dict.popitem takes
            self._empty(name)
            return name, super().pop(name)

    def clear(self) -> None:
        with self._lock:
            for name in self:
                self._empty(name)
            super().clear()

    def setdefault(self, name: str, default: object = None) -> object:
        with self._lock:
            if name not in self:
                super().__setitem__(name, default)
                self._fill(name)
            return dict.__getitem__(self, name)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def __ior__(self, other: Any) -> Self:  # type: ignore[override,misc]
        self.update(other)
        return self


# Threads the lifecycle opens sync resources in: they may use loop-bound resources.
_opening_thread = threading.local()


class Guard:
    """The open values of a lifecycle's resources, and the rules for handing them out."""

    def __init__(self, loop_bound: frozenset[str], advice: Advice) -> None:
        self.values = _Values()
        """Each open resource's value, by name."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the resources were opened in, while any of them is open."""
        self.loop_bound = loop_bound
        self.advice = advice

    def cell(self, name: str) -> list[object]:
        """A list that holds the value of ``name`` exactly while it is open (else empty).

        ``cell[0]`` is then the open value, and an ``IndexError`` while the resource
        is not open: what ``values[name]`` gives, without hashing the name. The
        other checks are still the caller's. Read it, never change it.
        """
        return self.values.cell(name)

    def hand_out(self, name: str) -> object:
        """The open value of the resource ``name``, after every check."""
        try:
            value = self.values[name]
        except KeyError:
            msg = _join(
                f"Resource {name!r} is not open: the container's resources open in the ASGI "
                "lifespan startup, and it has not run in this process (or shutdown already "
                "ran).",
                self.advice.not_open,
            )
            raise ResourcesNotStartedError(msg) from None
        if name in self.loop_bound:
            loop = here()
            if loop is None:
                if _loop_of_this_thread() is not self.loop:
                    msg = _join(
                        f"Resource {name!r} belongs to the event loop that ran the lifespan "
                        "startup, and it was asked for from a thread that cannot reach that "
                        "loop",
                        self.advice.wrong_thread,
                    )
                    raise WrongEventLoopError(msg)
            elif loop is not self.loop:
                msg = _join(
                    f"Resource {name!r} belongs to the event loop that ran the lifespan "
                    "startup, and it was asked for from another event loop.",
                    self.advice.wrong_loop,
                )
                raise WrongEventLoopError(msg)
        return value


def _join(what: str, advice: str) -> str:
    """``what`` and then the advice; one that starts with "(" qualifies ``what``."""
    if not what.endswith("."):
        return f"{what} {advice}" if advice.startswith("(") else f"{what}. {advice}".rstrip()
    return f"{what} {advice}" if advice else what


def open_in_thread(loop: asyncio.AbstractEventLoop, init: Callable[[], object]) -> object:
    """Call ``init`` in a worker thread that may use the resources of ``loop``."""
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
