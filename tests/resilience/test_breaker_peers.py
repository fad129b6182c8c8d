"""The breaker's side of shared health: what it reports (a trip, a close) and how a
peer's ejection or successful probe is applied to it."""

from __future__ import annotations

from turnout.resilience.breaker import BreakerSettings, BreakerState, CircuitBreaker
from turnout.resilience.clock import FakeClock


def make(**overrides: float) -> tuple[CircuitBreaker, FakeClock]:
    settings = BreakerSettings(consecutive_failures=2, failure_rate_threshold=None,
                               base_ejection_s=10.0, max_ejection_s=100.0,
                               ejection_decay_s=100.0, **overrides)  # type: ignore[arg-type]
    clock = FakeClock(1000.0)
    return CircuitBreaker(settings, clock), clock


def test_record_failure_says_when_it_opens_the_breaker() -> None:
    breaker, clock = make()
    assert breaker.record_failure() is False
    assert breaker.record_failure() is True  # the trip
    assert breaker.record_failure() is False  # already open: ignored
    clock.advance(10.0)
    assert breaker.allow()  # half open: the probe
    assert breaker.record_failure() is True  # re-opened
    assert breaker.times_ejected == 2


def test_record_success_says_when_it_closes_the_breaker() -> None:
    breaker, clock = make()
    assert breaker.record_success() is False  # closed already
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.record_success() is False  # open: ignored
    clock.advance(10.0)
    assert breaker.allow()
    assert breaker.record_success() is True
    assert breaker.state is BreakerState.CLOSED


def test_a_peers_ejection_opens_a_closed_breaker_until_its_end() -> None:
    breaker, clock = make()
    breaker.record_failure()  # one of two: the peer's ejection clears the count
    assert breaker.eject_until(clock.monotonic() + 25.0, times_ejected=3)
    assert breaker.state is BreakerState.OPEN
    assert breaker.open_until == 1025.0
    assert breaker.times_ejected == 3
    clock.advance(25.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    breaker.record_failure()  # the fourth ejection: 10 * 2**3, as the fleet counts
    assert breaker.open_until == 1025.0 + 80.0


def test_a_peers_ejection_only_ever_lengthens_ours() -> None:
    breaker, clock = make()
    breaker.record_failure()
    breaker.record_failure()  # ours: until 1010
    assert not breaker.eject_until(1005.0, times_ejected=1)
    assert breaker.open_until == 1010.0
    assert breaker.eject_until(1030.0, times_ejected=1)
    assert breaker.open_until == 1030.0
    assert not breaker.eject_until(clock.monotonic() - 1.0)  # over already


def test_a_peers_ejection_takes_back_half_open_probe_slots() -> None:
    breaker, clock = make()
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(10.0)
    assert breaker.allow()  # our probe is in flight
    assert breaker.eject_until(clock.monotonic() + 10.0, times_ejected=2)
    assert not breaker.is_available()
    assert breaker.record_success() is False  # the probe's answer lands while open
    assert breaker.state is BreakerState.OPEN


def test_a_peers_probe_closes_our_breaker_and_keeps_the_ejection_count() -> None:
    breaker, _ = make()
    assert not breaker.close_for_peer()  # closed already
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.close_for_peer()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.times_ejected == 1  # unlike reset(): the next ejection still doubles
