"""A time limit passed when the test says so, instead of waited out on the wall clock.

A test of a time limit needs two things: what must be cut off never finishes (it
waits on an event nobody sets), and what must finish in time always does. Waiting
a short limit out for real (50 ms) makes the second a race on a slow machine. So
these tests set a limit no sibling can miss (10 s), wait on events until every
sibling did its part, and then :meth:`LoopClock.advance` the event loop's clock
past the limit: the limit passes at once, and never before the siblings finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.lifespan_driver import WAIT


class LoopClock:
    """The clock of the test's event loop, which the test moves forward.

    Every timer of the loop reads ``loop.time()``: ``asyncio.timeout()``,
    ``asyncio.wait(timeout=...)``, ``call_later()`` and asgiref's timeouts. After
    :meth:`advance`, the timers due by then fire on the loop's next iteration; the
    ones set later count from the moved clock, so they keep their whole length.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def advance(self, seconds: float) -> None:
        """Move the running loop's clock ``seconds`` forward."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            real = loop.time
            loop.time = lambda: real() + self._offset  # type: ignore[method-assign]
            self._loop = loop
        assert loop is self._loop, "one LoopClock moves one event loop"
        self._offset += seconds

    def restore(self) -> None:
        """Give the loop back its own clock."""
        if self._loop is not None:
            del self._loop.time  # the instance attribute set above: the method is back
            self._loop = None


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop (and its threads) run until ``condition`` holds; bounded by WAIT."""
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.001)
    except TimeoutError:
        msg = f"never: {what}"
        raise AssertionError(msg) from None
