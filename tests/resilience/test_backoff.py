import random
from collections.abc import Callable

import pytest

from turnout.resilience.backoff import (
    Action,
    BackoffSettings,
    Reason,
    RetryDecision,
    backoff_delay,
    decide,
    retry_delay,
    should_wait,
)
from turnout.resilience.clock import FakeClock
from turnout.resilience.retry_budget import BudgetSettings, RetryBudget


class FixedRandom:
    """An rng whose every draw is `value`."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


SETTINGS = BackoffSettings(base_s=0.5, cap_s=8.0)


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_stays_within_full_jitter_bounds(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(8.0, 0.5 * 2**attempt)
    delays = [backoff_delay(attempt, SETTINGS, rng) for _ in range(2000)]
    assert all(0.0 <= d < ceiling for d in delays)
    # Full jitter spans the whole range, not just its top (as "equal jitter" would).
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling


def test_backoff_ceiling_uses_the_extremes_of_the_draw() -> None:
    assert backoff_delay(2, SETTINGS, FixedRandom(0.0)) == 0.0
    assert backoff_delay(2, SETTINGS, FixedRandom(0.5)) == pytest.approx(1.0)  # 0.5 * 2.0
    assert backoff_delay(10, SETTINGS, FixedRandom(0.5)) == pytest.approx(4.0)  # capped at 8


def test_backoff_jitter_is_uniform() -> None:
    rng = random.Random(1234)
    settings = BackoffSettings(base_s=1.0, cap_s=100.0)
    samples = [backoff_delay(2, settings, rng) for _ in range(20000)]  # uniform in [0, 4)
    mean = sum(samples) / len(samples)
    assert mean == pytest.approx(2.0, abs=0.05)  # sd of the mean is ~0.008
    bins = [0] * 8
    for sample in samples:
        bins[int(sample / 0.5)] += 1
    for count in bins:
        assert count / len(samples) == pytest.approx(1 / 8, abs=0.01)


def test_backoff_does_not_overflow_on_huge_attempt_numbers() -> None:
    assert backoff_delay(10_000, SETTINGS, FixedRandom(0.5)) == pytest.approx(4.0)


def test_retry_after_is_a_floor() -> None:
    rng = random.Random(7)
    for attempt in range(6):
        assert retry_delay(attempt, 3.0, SETTINGS, rng) >= 3.0
    # Beyond the cap too: the upstream's wait wins over our own cap.
    assert retry_delay(0, 30.0, SETTINGS, FixedRandom(0.9)) == 30.0


def test_backoff_wins_when_longer_than_retry_after() -> None:
    # ceiling at attempt 4 is 8.0; 0.9 * 8.0 = 7.2 > 1.0
    assert retry_delay(4, 1.0, SETTINGS, FixedRandom(0.9)) == pytest.approx(7.2)
    assert retry_delay(4, None, SETTINGS, FixedRandom(0.9)) == pytest.approx(7.2)


@pytest.mark.parametrize(
    ("delay", "remaining", "max_wait", "min_attempt", "expected"),
    [
        (1.0, 5.0, None, 0.0, True),
        (5.0, 5.0, None, 0.0, False),  # would arrive exactly at the deadline
        (6.0, 5.0, None, 0.0, False),
        (1.0, None, None, 0.0, True),  # no deadline
        (30.0, None, 10.0, 0.0, False),  # exceeds max_retry_after
        (10.0, None, 10.0, 0.0, True),
        (1.0, 2.5, None, 2.0, False),  # leaves 1.5 s, an attempt needs 2 s
        (1.0, 3.5, None, 2.0, True),
    ],
)
def test_should_wait(
    delay: float, remaining: float | None, max_wait: float | None, min_attempt: float,
    expected: bool,
) -> None:
    assert should_wait(delay, remaining, max_wait, min_attempt) is expected


def _decide(**overrides: object) -> RetryDecision:
    facts: dict[str, object] = {
        "retryable": True,
        "attempts_made": 1,
        "max_attempts": 3,
        "delay": 1.0,
        "remaining_deadline": 60.0,
        "has_next_target": True,
        "budget_allows": True,
        "max_retry_after_s": 10.0,
        "min_attempt_s": 0.0,
    }
    facts.update(overrides)
    return decide(**facts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "action", "reason"),
    [
        # 30 s Retry-After while a fallback exists: go there now instead of sleeping.
        ({"delay": 30.0}, Action.FAIL_OVER, Reason.WAIT_TOO_LONG),
        # ... but without a fallback, waiting is the only way (the deadline allows it).
        ({"delay": 30.0, "has_next_target": False}, Action.RETRY_AFTER_WAIT,
         Reason.RETRYABLE),
        ({"delay": 30.0, "has_next_target": False, "remaining_deadline": 20.0},
         Action.GIVE_UP, Reason.DEADLINE),
        ({"delay": 30.0, "remaining_deadline": 20.0}, Action.FAIL_OVER, Reason.DEADLINE),
        # 1 s wait with 5 s left: wait and retry, fallback or not.
        ({"delay": 1.0, "remaining_deadline": 5.0}, Action.RETRY_AFTER_WAIT, Reason.RETRYABLE),
        ({"delay": 1.0, "remaining_deadline": 5.0, "has_next_target": False},
         Action.RETRY_AFTER_WAIT, Reason.RETRYABLE),
        ({"remaining_deadline": None}, Action.RETRY_AFTER_WAIT, Reason.RETRYABLE),
        # Retry budget spent.
        ({"budget_allows": False}, Action.FAIL_OVER, Reason.BUDGET_EXHAUSTED),
        ({"budget_allows": False, "has_next_target": False}, Action.GIVE_UP,
         Reason.BUDGET_EXHAUSTED),
        # Per-target attempts used up.
        ({"attempts_made": 3}, Action.FAIL_OVER, Reason.ATTEMPTS_EXHAUSTED),
        ({"attempts_made": 3, "has_next_target": False}, Action.GIVE_UP,
         Reason.ATTEMPTS_EXHAUSTED),
        ({"attempts_made": 1, "max_attempts": 1}, Action.FAIL_OVER, Reason.ATTEMPTS_EXHAUSTED),
        # Caller errors go nowhere, even with a fallback.
        ({"retryable": False}, Action.GIVE_UP, Reason.NOT_RETRYABLE),
        # No time left for anything.
        ({"remaining_deadline": 0.0}, Action.GIVE_UP, Reason.DEADLINE),
        ({"remaining_deadline": 0.5, "min_attempt_s": 1.0}, Action.GIVE_UP, Reason.DEADLINE),
        # Waiting would leave too little for the attempt, but another target can start now.
        ({"delay": 1.0, "remaining_deadline": 1.5, "min_attempt_s": 1.0}, Action.FAIL_OVER,
         Reason.DEADLINE),
        # No cap on waiting at all.
        ({"delay": 30.0, "max_retry_after_s": None}, Action.RETRY_AFTER_WAIT,
         Reason.RETRYABLE),
    ],
)
def test_decision_table(overrides: dict[str, object], action: Action, reason: Reason) -> None:
    decision = _decide(**overrides)
    assert (decision.action, decision.reason) == (action, reason)
    if action is Action.RETRY_AFTER_WAIT:
        assert decision.delay == overrides.get("delay", 1.0)
    else:
        assert decision.delay == 0.0


def _counting(result: bool) -> tuple[Callable[[], bool], list[int]]:
    calls = [0]

    def acquire() -> bool:
        calls[0] += 1
        return result

    return acquire, calls


def test_budget_is_consulted_only_when_a_retry_would_happen() -> None:
    acquire, calls = _counting(True)
    assert _decide(budget_allows=acquire, delay=30.0).action is Action.FAIL_OVER
    assert _decide(budget_allows=acquire, attempts_made=3).action is Action.FAIL_OVER
    assert _decide(budget_allows=acquire, retryable=False).action is Action.GIVE_UP
    assert calls == [0]
    assert _decide(budget_allows=acquire).action is Action.RETRY_AFTER_WAIT
    assert calls == [1]


def test_exhausted_real_budget_fails_over() -> None:
    budget = RetryBudget(BudgetSettings(ratio=0.0, min_per_window=1), FakeClock())
    first = _decide(budget_allows=budget.try_acquire_retry)
    second = _decide(budget_allows=budget.try_acquire_retry)
    assert first.action is Action.RETRY_AFTER_WAIT
    assert (second.action, second.reason) == (Action.FAIL_OVER, Reason.BUDGET_EXHAUSTED)


def test_settings_reject_negative_durations() -> None:
    with pytest.raises(ValueError):
        BackoffSettings(base_s=-1.0)
    with pytest.raises(ValueError):
        BackoffSettings(max_retry_after_s=-1.0)
