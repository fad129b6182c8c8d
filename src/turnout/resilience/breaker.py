"""A circuit breaker per deployment, in the style of Envoy's outlier detection.

Only real upstream outcomes are recorded, and the caller (the executor) decides what that
means: an upstream 5xx, 429/529 overload, connection failure, timeout or malformed response
is a failure (`TurnoutError.origin == "upstream"` and `retryable`); a success is a response
that started arriving. Caller errors (400, 401, context too long), client disconnects,
cancellations by a hedge winner and the gateway's own faults are recorded as nothing at all:
they say nothing about the upstream's health. A probe cancelled that way is handed back
with `release_probe()`.

States:

- CLOSED: traffic flows. The breaker trips when `consecutive_failures` failures happen in a
  row, or when at least `min_calls` outcomes in the sliding window show a failure rate of at
  least `failure_rate_threshold`.
- OPEN: the deployment is ejected for `base_ejection_s * 2**(times_ejected - 1)` seconds,
  capped at `max_ejection_s`. Each ejection doubles the next; each `ejection_decay_s`
  spent healthy (closed) forgets one ejection, like Envoy's ejection multiplier.
- HALF_OPEN: after the ejection, up to `half_open_max_probes` calls at a time are let
  through. `half_open_successes` probe successes close the breaker; one probe failure opens
  it again, for longer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from turnout.resilience._window import SlidingCounts
from turnout.resilience.clock import Clock

_MAX_EXPONENT = 62


class BreakerState(enum.Enum):
    """The three circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Thresholds and timings of a circuit breaker (shared by every deployment of a board)."""

    consecutive_failures: int = 5
    """Failures in a row that trip the breaker; 0 disables this trigger."""
    failure_rate_threshold: float | None = 0.5
    """Failure share (0..1] in the window that trips the breaker; `None` disables it."""
    min_calls: int = 20
    """Outcomes the window must hold before the failure rate is judged."""
    window_s: float = 30.0
    """Length of the sliding window for the failure rate."""
    window_buckets: int = 10
    """Resolution of the window (more buckets: smoother expiry, a little more memory)."""
    base_ejection_s: float = 30.0
    """Length of the first ejection."""
    max_ejection_s: float = 300.0
    """Ejections never last longer than this."""
    ejection_decay_s: float = 300.0
    """Each full period this long spent closed forgets one past ejection."""
    half_open_max_probes: int = 1
    """Concurrent calls let through while half open."""
    half_open_successes: int = 1
    """Probe successes needed to close again."""

    def __post_init__(self) -> None:
        if self.consecutive_failures < 0 or self.min_calls < 0:
            raise ValueError("consecutive_failures and min_calls must be >= 0")
        rate = self.failure_rate_threshold
        if rate is not None and not 0.0 < rate <= 1.0:
            raise ValueError("failure_rate_threshold must be in (0, 1] or None")
        if self.base_ejection_s < 0 or self.max_ejection_s < self.base_ejection_s:
            raise ValueError("need 0 <= base_ejection_s <= max_ejection_s")
        if self.ejection_decay_s <= 0 or self.window_s <= 0 or self.window_buckets < 1:
            raise ValueError("ejection_decay_s and window_s must be > 0, window_buckets >= 1")
        if self.half_open_max_probes < 1 or self.half_open_successes < 1:
            raise ValueError("half_open_max_probes and half_open_successes must be >= 1")


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A read-only view of one breaker, for /metrics, the admin API and the balancers."""

    state: BreakerState
    consecutive_failures: int
    window_calls: int
    """Outcomes recorded in the sliding window (reset when the breaker trips)."""
    window_failures: int
    open_until: float | None
    """Clock time the current ejection ends (OPEN only)."""
    opened_at: float | None
    """Clock time of the latest trip, while OPEN or HALF_OPEN."""
    times_ejected: int
    """Ejections counted for the next ejection's length, after decay."""
    probes_in_flight: int


class CircuitBreaker:
    """One deployment's breaker. Not thread-safe by design: it lives on one event loop."""

    __slots__ = (
        "_clock",
        "_consecutive",
        "_healthy_since",
        "_open_until",
        "_opened_at",
        "_probe_successes",
        "_probes",
        "_settings",
        "_state",
        "_times_ejected",
        "_window",
    )

    def __init__(self, settings: BreakerSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._window = SlidingCounts(settings.window_s, settings.window_buckets)
        """first: calls, second: failures."""
        self._consecutive = 0
        self._times_ejected = 0
        self._healthy_since: float | None = None
        self._open_until = 0.0
        self._opened_at: float | None = None
        self._probes = 0
        self._probe_successes = 0

    @property
    def settings(self) -> BreakerSettings:
        return self._settings

    @property
    def state(self) -> BreakerState:
        """The current state (an expired ejection reads as HALF_OPEN)."""
        self._refresh(self._clock.monotonic())
        return self._state

    @property
    def open_until(self) -> float | None:
        """When the current ejection ends (the next probe may go), while OPEN; else None."""
        self._refresh(self._clock.monotonic())
        return self._open_until if self._state is BreakerState.OPEN else None

    @property
    def opened_at(self) -> float | None:
        """When the latest trip happened, while not CLOSED."""
        return self._opened_at

    def is_available(self) -> bool:
        """Whether `allow()` would let a call through now, without reserving anything
        (for routing, which may never call this deployment)."""
        self._refresh(self._clock.monotonic())
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.HALF_OPEN:
            return self._probes < self._settings.half_open_max_probes
        return False

    def is_ejected(self) -> bool:
        """Whether the deployment is OPEN (ejected) now."""
        self._refresh(self._clock.monotonic())
        return self._state is BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may go to this deployment now. In HALF_OPEN a True reserves one
        probe slot: follow it with exactly one `record_success`, `record_failure` or
        `release_probe`."""
        self._refresh(self._clock.monotonic())
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.HALF_OPEN and (
            self._probes < self._settings.half_open_max_probes
        ):
            self._probes += 1
            return True
        return False

    def release_probe(self) -> None:
        """Give back a probe slot whose call ended without an upstream outcome (cancelled,
        client gone). A no-op outside HALF_OPEN."""
        if self._state is BreakerState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def record_success(self) -> bool:
        """A real upstream success. While OPEN (a call that started before the trip) it is
        ignored: the ejection runs its course. True when it closed the breaker."""
        now = self._clock.monotonic()
        self._refresh(now)
        if self._state is BreakerState.CLOSED:
            self._consecutive = 0
            self._window.add(now, 1, 0)
        elif self._state is BreakerState.HALF_OPEN:
            # A call that started before the trip may land here too; it is real, recent
            # evidence of health, so it counts like a probe.
            if self._probes > 0:
                self._probes -= 1
            self._probe_successes += 1
            if self._probe_successes >= self._settings.half_open_successes:
                self._close(now)
                return True
        return False

    def record_failure(self) -> bool:
        """A real upstream failure. While OPEN it is ignored (the breaker already knows).
        True when it opened the breaker (tripped it, or re-opened it from HALF_OPEN)."""
        now = self._clock.monotonic()
        self._refresh(now)
        if self._state is BreakerState.CLOSED:
            self._consecutive += 1
            self._window.add(now, 1, 1)
            if self._should_trip():
                self._trip(now)
                return True
        elif self._state is BreakerState.HALF_OPEN:
            self._trip(now)
            return True
        return False

    def end_ejection(self) -> None:
        """Move an OPEN breaker to HALF_OPEN now (the ejection cap admits it as a probe)."""
        if self._state is BreakerState.OPEN:
            self._half_open()

    def eject_until(self, until: float, times_ejected: int = 1) -> bool:
        """A peer (another replica) ejected this deployment: be OPEN until `until` (clock
        time), keeping a later ejection of our own, and count at least `times_ejected`
        ejections so that our next trip lasts as long as the fleet's would. True when it
        changed anything.

        Probes in flight are forgotten (their outcomes land while OPEN and are ignored,
        as for any call that started before a trip)."""
        now = self._clock.monotonic()
        self._refresh(now)
        if until <= now:
            return False
        times = max(self._decayed_ejections(now), times_ejected, 1)
        if self._state is BreakerState.OPEN and self._open_until >= until:
            changed = times > self._times_ejected
            self._times_ejected = times
            return changed
        if self._state is not BreakerState.OPEN:
            self._opened_at = now
            self._healthy_since = None
            self._consecutive = 0
            self._probes = 0
            self._probe_successes = 0
            self._window.clear()
        self._state = BreakerState.OPEN
        self._open_until = until
        self._times_ejected = times
        return True

    def close_for_peer(self) -> bool:
        """A peer's probe succeeded: close an OPEN or HALF_OPEN breaker, keeping the count
        of past ejections (unlike `reset`). True when it was not closed already."""
        if self._state is BreakerState.CLOSED:
            return False
        self._close(self._clock.monotonic())
        return True

    @property
    def times_ejected(self) -> int:
        """Ejections counted for the next ejection's length, after decay."""
        return self._decayed_ejections(self._clock.monotonic())

    def reset(self) -> None:
        """Close the breaker and forget its history (admin action)."""
        self._close(self._clock.monotonic())
        self._times_ejected = 0

    def snapshot(self) -> BreakerSnapshot:
        """The breaker's state and counters now."""
        now = self._clock.monotonic()
        self._refresh(now)
        self._window.advance(now)
        return BreakerSnapshot(
            state=self._state,
            consecutive_failures=self._consecutive,
            window_calls=self._window.first,
            window_failures=self._window.second,
            open_until=self._open_until if self._state is BreakerState.OPEN else None,
            opened_at=self._opened_at,
            times_ejected=self._decayed_ejections(now),
            probes_in_flight=self._probes,
        )

    # -- transitions ------------------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        if self._state is BreakerState.OPEN and now >= self._open_until:
            self._half_open()

    def _should_trip(self) -> bool:
        s = self._settings
        if s.consecutive_failures and self._consecutive >= s.consecutive_failures:
            return True
        calls = self._window.first
        return (
            s.failure_rate_threshold is not None
            and calls > 0
            and calls >= s.min_calls
            and self._window.second >= s.failure_rate_threshold * calls
        )

    def _decayed_ejections(self, now: float) -> int:
        if self._state is not BreakerState.CLOSED or self._healthy_since is None:
            return self._times_ejected
        forgotten = int((now - self._healthy_since) // self._settings.ejection_decay_s)
        return max(0, self._times_ejected - forgotten)

    def _trip(self, now: float) -> None:
        s = self._settings
        self._times_ejected = self._decayed_ejections(now) + 1
        exponent = min(self._times_ejected - 1, _MAX_EXPONENT)
        self._open_until = now + min(s.max_ejection_s, s.base_ejection_s * 2.0**exponent)
        self._opened_at = now
        self._state = BreakerState.OPEN
        self._healthy_since = None
        self._consecutive = 0
        self._probes = 0
        self._probe_successes = 0
        # Failures that caused this trip must not trip it again right after it closes.
        self._window.clear()

    def _half_open(self) -> None:
        self._state = BreakerState.HALF_OPEN
        self._probes = 0
        self._probe_successes = 0

    def _close(self, now: float) -> None:
        self._state = BreakerState.CLOSED
        self._healthy_since = now
        self._opened_at = None
        self._consecutive = 0
        self._probes = 0
        self._probe_successes = 0
        self._window.clear()
