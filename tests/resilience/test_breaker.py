import pytest

from turnout.resilience.breaker import BreakerSettings, BreakerState, CircuitBreaker
from turnout.resilience.clock import FakeClock


def make(**overrides: object) -> tuple[CircuitBreaker, FakeClock]:
    params: dict[str, object] = {
        "consecutive_failures": 3,
        "failure_rate_threshold": None,
        "min_calls": 10,
        "window_s": 10.0,
        "window_buckets": 10,
        "base_ejection_s": 10.0,
        "max_ejection_s": 100.0,
        "ejection_decay_s": 100.0,
        "half_open_max_probes": 1,
        "half_open_successes": 1,
    }
    params.update(overrides)
    clock = FakeClock(1000.0)
    return CircuitBreaker(BreakerSettings(**params), clock), clock  # type: ignore[arg-type]


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def succeed(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_success()


# -- consecutive failures --------------------------------------------------------------------

def test_opens_after_consecutive_failures() -> None:
    breaker, _ = make()
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    snap = breaker.snapshot()
    assert snap.open_until == 1010.0
    assert snap.opened_at == 1000.0
    assert snap.times_ejected == 1


def test_a_success_resets_the_consecutive_count() -> None:
    breaker, _ = make()
    fail(breaker, 2)
    succeed(breaker, 1)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 2


def test_consecutive_trigger_can_be_disabled() -> None:
    breaker, _ = make(consecutive_failures=0)
    fail(breaker, 50)
    assert breaker.state is BreakerState.CLOSED


# -- failure rate ----------------------------------------------------------------------------

def test_failure_rate_below_min_calls_does_not_open() -> None:
    breaker, _ = make(consecutive_failures=0, failure_rate_threshold=0.5, min_calls=10)
    fail(breaker, 9)  # 100 % failures, but only 9 calls
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN


def test_failure_rate_opens_at_the_threshold() -> None:
    breaker, _ = make(consecutive_failures=0, failure_rate_threshold=0.5, min_calls=10)
    for _ in range(4):  # 8 calls, 4 failures, interleaved so no streak matters
        fail(breaker, 1)
        succeed(breaker, 1)
    succeed(breaker, 2)  # 10 calls, 40 %
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)  # 11 calls, 5 failures: 45 %
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)  # 12 calls, 6 failures: 50 %
    assert breaker.state is BreakerState.OPEN


def test_failures_older_than_the_window_are_forgotten() -> None:
    breaker, clock = make(consecutive_failures=0, failure_rate_threshold=0.5, min_calls=10)
    fail(breaker, 9)
    clock.advance(10.0)  # the whole window has passed
    snap = breaker.snapshot()
    assert (snap.window_calls, snap.window_failures) == (0, 0)
    fail(breaker, 1)  # 1 call in the window: below min_calls
    assert breaker.state is BreakerState.CLOSED


def test_window_slides_bucket_by_bucket() -> None:
    breaker, clock = make(consecutive_failures=0, failure_rate_threshold=0.9, min_calls=100)
    fail(breaker, 5)  # bucket at t=1000
    clock.advance(5.0)
    fail(breaker, 3)  # bucket at t=1005
    assert breaker.snapshot().window_failures == 8
    clock.advance(5.0)  # t=1010: the t=1000 bucket expires, the t=1005 one is kept
    assert breaker.snapshot().window_failures == 3
    clock.advance(5.0)
    assert breaker.snapshot().window_failures == 0


# -- half open -------------------------------------------------------------------------------

def test_half_open_after_the_ejection_with_limited_probes() -> None:
    breaker, clock = make(half_open_max_probes=2)
    fail(breaker, 3)
    clock.advance(9.999)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.is_available()
    clock.advance(0.001)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.is_available()
    assert breaker.is_available()  # looking reserves nothing
    assert breaker.allow()
    assert breaker.allow()
    assert not breaker.allow()  # both probe slots taken
    assert not breaker.is_available()
    assert breaker.snapshot().probes_in_flight == 2
    breaker.release_probe()  # a probe was cancelled: its slot is free again
    assert breaker.allow()
    assert not breaker.allow()


def test_probe_failure_reopens_with_doubled_ejection() -> None:
    breaker, clock = make()
    fail(breaker, 3)
    expected = [10.0, 20.0, 40.0, 80.0, 100.0, 100.0]  # base * 2**(n-1), capped at 100
    for n, ejection in enumerate(expected, start=1):
        snap = breaker.snapshot()
        assert snap.state is BreakerState.OPEN
        assert snap.times_ejected == n
        assert snap.open_until == pytest.approx(clock.monotonic() + ejection)
        clock.advance(ejection)
        assert breaker.allow()  # the probe
        breaker.record_failure()


def test_probe_success_closes() -> None:
    breaker, clock = make()
    fail(breaker, 3)
    clock.advance(10.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    snap = breaker.snapshot()
    assert snap.open_until is None and snap.opened_at is None
    assert snap.consecutive_failures == 0
    succeed(breaker, 5)


def test_closing_needs_the_configured_probe_successes() -> None:
    breaker, clock = make(half_open_successes=2, half_open_max_probes=1)
    fail(breaker, 3)
    clock.advance(10.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the slot came back with the first outcome
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_failures_that_tripped_the_breaker_do_not_count_after_it_closes() -> None:
    breaker, clock = make(consecutive_failures=0, failure_rate_threshold=0.5, min_calls=4)
    fail(breaker, 4)
    clock.advance(10.0)
    succeed(breaker, 1)  # probe success: closed
    fail(breaker, 1)  # 1 call of 1 failed, but below min_calls again
    assert breaker.state is BreakerState.CLOSED


def test_outcomes_while_open_are_ignored() -> None:
    breaker, _ = make()
    fail(breaker, 3)
    open_until = breaker.snapshot().open_until
    breaker.record_failure()  # a call that started before the trip
    breaker.record_success()
    snap = breaker.snapshot()
    assert snap.state is BreakerState.OPEN
    assert snap.open_until == open_until
    assert snap.times_ejected == 1


def test_release_probe_outside_half_open_is_a_no_op() -> None:
    breaker, _ = make()
    breaker.release_probe()
    assert breaker.snapshot().probes_in_flight == 0
    succeed(breaker, 1)


# -- decay -----------------------------------------------------------------------------------

def test_ejection_count_decays_after_a_healthy_period() -> None:
    breaker, clock = make()
    fail(breaker, 3)  # ejection 1: 10 s
    clock.advance(10.0)
    breaker.allow()
    breaker.record_failure()  # ejection 2: 20 s
    clock.advance(20.0)
    succeed(breaker, 1)  # closed, healthy from now on
    assert breaker.snapshot().times_ejected == 2
    clock.advance(99.0)
    assert breaker.snapshot().times_ejected == 2
    clock.advance(1.0)  # one decay period healthy: one ejection forgotten
    assert breaker.snapshot().times_ejected == 1
    fail(breaker, 3)  # next ejection is the second: 20 s, not the third's 40 s
    snap = breaker.snapshot()
    assert snap.times_ejected == 2
    assert snap.open_until == pytest.approx(clock.monotonic() + 20.0)


def test_long_health_forgets_every_ejection() -> None:
    breaker, clock = make()
    fail(breaker, 3)
    clock.advance(10.0)
    succeed(breaker, 1)
    clock.advance(1000.0)
    assert breaker.snapshot().times_ejected == 0
    fail(breaker, 3)
    assert breaker.snapshot().open_until == pytest.approx(clock.monotonic() + 10.0)


def test_reset_closes_and_forgets() -> None:
    breaker, _ = make()
    fail(breaker, 3)
    breaker.reset()
    snap = breaker.snapshot()
    assert (snap.state, snap.times_ejected) == (BreakerState.CLOSED, 0)
    fail(breaker, 3)
    assert breaker.snapshot().times_ejected == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"failure_rate_threshold": 0.0},
        {"failure_rate_threshold": 1.5},
        {"base_ejection_s": 10.0, "max_ejection_s": 5.0},
        {"half_open_max_probes": 0},
        {"half_open_successes": 0},
        {"window_s": 0.0},
        {"consecutive_failures": -1},
    ],
)
def test_invalid_settings_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BreakerSettings(**overrides)  # type: ignore[arg-type]
