"""Breaker policy switches: each trip rule can be switched off on its own, and a fixed
cooldown has its own spelling. Policies compile into the breaker's settings, so these run
the real `CircuitBreaker` the engine would build for each policy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from turnout.config.policies import BreakerPolicy, RoutePolicy, policy_problems
from turnout.engine.state import breaker_settings
from turnout.resilience.breaker import BreakerSettings, BreakerState, CircuitBreaker
from turnout.resilience.clock import FakeClock


def breaker_for(**policy: Any) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock(1000.0)
    return CircuitBreaker(breaker_settings(BreakerPolicy(**policy)), clock), clock


def outcomes(breaker: CircuitBreaker, pattern: str, times: int = 1) -> None:
    """Record `pattern` (`f` failure, `s` success) `times` over."""
    for _ in range(times):
        for outcome in pattern:
            assert breaker.allow()
            if outcome == "f":
                breaker.record_failure()
            else:
                breaker.record_success()


def test_defaults_are_unchanged() -> None:
    assert breaker_settings(BreakerPolicy()) == BreakerSettings(
        consecutive_failures=5, failure_rate_threshold=0.5, min_calls=20, window_s=30,
        base_ejection_s=5, max_ejection_s=300, half_open_max_probes=1)
    policy = BreakerPolicy()
    assert (policy.consecutive_failures, policy.failure_rate_threshold,
            policy.ejection_growth) == (5, 0.5, "doubling")


def test_consecutive_rule_switched_off_leaves_the_rate_rule() -> None:
    breaker, _ = breaker_for(consecutive_failures=None, min_calls=10)
    outcomes(breaker, "f", 9)  # nine in a row: would have tripped at five
    assert breaker.state is BreakerState.CLOSED
    outcomes(breaker, "f")  # ten calls, all failed: the rate rule trips
    assert breaker.state is BreakerState.OPEN


def test_rate_rule_switched_off_leaves_the_consecutive_rule() -> None:
    breaker, _ = breaker_for(failure_rate_threshold=None, min_calls=1)
    outcomes(breaker, "ffffs", 10)  # 80% failures, never five in a row
    assert breaker.state is BreakerState.CLOSED
    outcomes(breaker, "fffff")
    assert breaker.state is BreakerState.OPEN


def test_both_rules_switched_off_never_open() -> None:
    breaker, _ = breaker_for(consecutive_failures=None, failure_rate_threshold=None,
                             min_calls=1)
    outcomes(breaker, "f", 100)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(("growth", "ejections"), [
    ("doubling", [10.0, 20.0, 40.0, 50.0]), ("fixed", [10.0, 10.0, 10.0, 10.0])])
def test_ejection_growth(growth: str, ejections: list[float]) -> None:
    breaker, clock = breaker_for(consecutive_failures=1, base_ejection_s=10,
                                 max_ejection_s=50, ejection_growth=growth)
    seen = []
    for _ in ejections:
        outcomes(breaker, "f")  # trips (a failed probe re-trips)
        until = breaker.open_until
        assert until is not None
        seen.append(until - clock.monotonic())
        clock.advance(seen[-1])  # ejection over: half open
    assert seen == ejections


def test_fixed_cooldown_needs_no_max_ejection() -> None:
    """A fixed cooldown longer than the default max_ejection_s is valid: the max is unused."""
    fixed = RoutePolicy.model_validate(
        {"breaker": {"ejection_growth": "fixed", "base_ejection_s": 600}})
    assert policy_problems(fixed) == []
    breaker = CircuitBreaker(breaker_settings(fixed.breaker), FakeClock())
    assert breaker.settings.base_ejection_s == breaker.settings.max_ejection_s == 600
    doubling = RoutePolicy.model_validate({"breaker": {"base_ejection_s": 600}})
    assert policy_problems(doubling) == [
        ("breaker.base_ejection_s", "600 exceeds max_ejection_s (300)")]


@pytest.mark.parametrize("bad", [
    {"consecutive_failures": 0}, {"failure_rate_threshold": 0},
    {"failure_rate_threshold": 1.5}, {"ejection_growth": "linear"},
    {"ejection_growth": None},
])
def test_invalid_switches_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BreakerPolicy(**bad)
