"""Time limits: a number of seconds, and how failures and messages name it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """``seconds`` to finish in; ``label`` is how a failure names the limit.

    The Django layer labels its limits by the setting they come from
    (``LIFESPAN_CONTAINER["SHUTDOWN_TIMEOUT"] (30 s)``); an unlabelled limit is
    named by its seconds.
    """

    seconds: float
    label: str = ""

    def __str__(self) -> str:
        return self.label or f"the time limit ({self.seconds:g} s)"

    def share(self, fraction: float) -> Limit:
        """A part of this limit, labelled as such: ``15 s, half of <this limit>``."""
        seconds = self.seconds * fraction
        return Limit(seconds, f"{seconds:g} s, {_part(fraction)} of {self}")

    def rest(self, used: float, after: str) -> Limit:
        """What is left of this limit once ``used`` seconds went ``after`` something."""
        return Limit(max(self.seconds - used, 0.0), f"what {after} left of {self}")


def _part(fraction: float) -> str:
    return "half" if fraction == 0.5 else f"{fraction:g}"


def positive_number(value: object) -> bool:
    """Whether ``value`` is a finite number of seconds above zero (``True`` is not)."""
    seconds = _finite_seconds(value)
    return seconds is not None and seconds > 0


def non_negative_number(value: object) -> bool:
    """Whether ``value`` is a finite number of seconds, zero allowed (``True`` is not)."""
    return _finite_seconds(value) is not None


def _finite_seconds(value: object) -> float | None:
    """``value`` as finite, non-negative seconds, or ``None`` for anything else.

    Only ``int`` and ``float`` count (not ``bool``, strings or ``Decimal``); an int too
    large for a float (``10**400``) is refused rather than raising ``OverflowError``.
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
