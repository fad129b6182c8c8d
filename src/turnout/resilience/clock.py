"""Injected time and randomness, so resilience logic is tested without sleeping.

Everything in `turnout.resilience` reads time only through a `Clock` and draws random
numbers only through a `RandomSource`; production passes `SystemClock()` and a
`random.Random()`, tests pass a `FakeClock` and a seeded `random.Random(seed)`.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic time source in seconds (only differences are meaningful)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class RandomSource(Protocol):
    """The one method of `random.Random` the resilience code needs."""

    def random(self) -> float:
        """A float uniformly distributed in [0.0, 1.0)."""
        ...


class SystemClock:
    """The process's monotonic clock (`time.monotonic`)."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when a test says so."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (never backwards, like a real monotonic clock);
        returns the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        self._now += seconds
        return self._now
