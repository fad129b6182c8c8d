"""Retry and hedge budgets: extra attempts may add at most a fixed share of load.

Formulation: a ratio over a sliding time window (as in Finagle and Linkerd), not Envoy's
share of *active* requests. Envoy's `budget_percent` bounds how many retries run
concurrently; with LLM upstreams, failures during an outage are fast (an instant 429/503)
while healthy calls last seconds to minutes, so few requests are active and each retry
finishes at once, and a concurrency bound does not bound the retry *rate* that hammers the
failing provider. Counting over a window bounds it directly, whatever the latencies:

    retries_in_window <= ratio * requests_in_window + min_per_window

The additive `min_per_window` floor lets a quiet deployment (a few requests a minute)
still retry a transient error. Only first attempts are recorded as requests; retries are
not, so retries cannot earn more retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout.resilience._window import SlidingCounts
from turnout.resilience.clock import Clock


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """How many extra attempts (retries or hedges) a deployment may add."""

    ratio: float = 0.2
    """Extra attempts allowed per recorded request (0.2: load grows by at most 20 %)."""
    min_per_window: int = 10
    """Extra attempts always allowed per window, on top of the ratio."""
    window_s: float = 10.0
    """Length of the sliding window."""
    window_buckets: int = 10
    """Resolution of the window."""

    def __post_init__(self) -> None:
        if self.ratio < 0 or self.min_per_window < 0:
            raise ValueError("ratio and min_per_window must be >= 0")
        if self.window_s <= 0 or self.window_buckets < 1:
            raise ValueError("window_s must be > 0 and window_buckets >= 1")


class _WindowBudget:
    """Requests and extra attempts counted over one sliding window."""

    __slots__ = ("_clock", "_counts", "_settings")

    def __init__(self, settings: BudgetSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._counts = SlidingCounts(settings.window_s, settings.window_buckets)
        """first: requests, second: extra attempts granted."""

    @property
    def settings(self) -> BudgetSettings:
        return self._settings

    def record_request(self) -> None:
        """Count one original request (a first attempt) to this deployment."""
        self._counts.add(self._clock.monotonic(), 1, 0)

    def _try_acquire(self) -> bool:
        counts = self._counts
        now = self._clock.monotonic()
        counts.advance(now)
        s = self._settings
        if counts.second + 1 > s.ratio * counts.first + s.min_per_window:
            return False
        counts.add(now, 0, 1)
        return True

    def allowance(self) -> float:
        """Extra attempts still allowed in the current window (may be fractional)."""
        counts = self._counts
        counts.advance(self._clock.monotonic())
        s = self._settings
        return max(0.0, s.ratio * counts.first + s.min_per_window - counts.second)

    def counts(self) -> tuple[int, int]:
        """`(requests, extra_attempts)` in the current window, for metrics."""
        self._counts.advance(self._clock.monotonic())
        return self._counts.first, self._counts.second


class RetryBudget(_WindowBudget):
    """A deployment's retry budget (see the module docstring for the formula)."""

    __slots__ = ()

    def try_acquire_retry(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        return self._try_acquire()


class HedgeBudget(_WindowBudget):
    """A deployment's hedge budget: hedged (speculative duplicate) attempts may add at most
    `ratio` of its requests' load, plus the floor, per window."""

    __slots__ = ()

    def try_acquire_hedge(self) -> bool:
        """Take one hedge from the budget; False (and nothing taken) when it is spent."""
        return self._try_acquire()
