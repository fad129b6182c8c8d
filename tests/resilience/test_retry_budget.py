import pytest

from turnout.resilience.clock import FakeClock
from turnout.resilience.retry_budget import BudgetSettings, HedgeBudget, RetryBudget


def test_retries_hold_under_a_total_outage_at_one_instant() -> None:
    """1000 requests all failing, each wanting 3 retries, within one window."""
    settings = BudgetSettings(ratio=0.2, min_per_window=10, window_s=10.0)
    budget = RetryBudget(settings, FakeClock())
    retries = 0
    for _ in range(1000):
        budget.record_request()
        for _ in range(3):
            if budget.try_acquire_retry():
                retries += 1
    bound = 0.2 * 1000 + 10
    assert retries <= bound
    assert retries >= bound - 1  # and the budget is actually usable, not just zero
    assert budget.counts() == (1000, retries)


def test_retries_hold_under_a_total_outage_over_time() -> None:
    """1000 failing requests over 100 s: every retry is granted within the window's ratio
    (requests that later leave the window take their allowance with them, so the check is
    made at grant time)."""
    settings = BudgetSettings(ratio=0.2, min_per_window=10, window_s=10.0, window_buckets=10)
    clock = FakeClock()
    budget = RetryBudget(settings, clock)
    retries = 0
    for _ in range(1000):
        clock.advance(0.1)
        budget.record_request()
        for _ in range(3):
            if budget.try_acquire_retry():
                retries += 1
                requests, extra = budget.counts()
                assert extra <= 0.2 * requests + 10
    # 0.2 per request plus the floor once per window's worth of time (11 windows' start).
    assert retries <= 0.2 * 1000 + 10 * 11
    assert retries >= 0.2 * 1000  # the ratio is available, not starved by the ring


def test_floor_allows_retries_without_traffic() -> None:
    budget = RetryBudget(BudgetSettings(ratio=0.5, min_per_window=2), FakeClock())
    assert budget.try_acquire_retry()
    assert budget.try_acquire_retry()
    assert not budget.try_acquire_retry()
    assert budget.allowance() == 0.0


def test_ratio_grows_the_allowance() -> None:
    budget = RetryBudget(BudgetSettings(ratio=0.25, min_per_window=0), FakeClock())
    for _ in range(3):
        budget.record_request()
    assert not budget.try_acquire_retry()  # 0.75 < 1
    budget.record_request()
    assert budget.try_acquire_retry()  # 1.0 allows one
    assert not budget.try_acquire_retry()


def test_budget_recovers_when_the_window_passes() -> None:
    clock = FakeClock()
    budget = RetryBudget(BudgetSettings(ratio=0.0, min_per_window=1, window_s=10.0), clock)
    assert budget.try_acquire_retry()
    assert not budget.try_acquire_retry()
    clock.advance(9.0)
    assert not budget.try_acquire_retry()
    clock.advance(1.0)
    assert budget.try_acquire_retry()


def test_refusal_takes_nothing() -> None:
    budget = RetryBudget(BudgetSettings(ratio=0.0, min_per_window=1), FakeClock())
    assert budget.try_acquire_retry()
    for _ in range(5):
        assert not budget.try_acquire_retry()
    assert budget.counts() == (0, 1)


def test_hedge_budget_is_a_share_of_requests() -> None:
    budget = HedgeBudget(BudgetSettings(ratio=0.1, min_per_window=0), FakeClock())
    hedges = 0
    for _ in range(100):
        budget.record_request()
        if budget.try_acquire_hedge():
            hedges += 1
    assert hedges == 10


@pytest.mark.parametrize(
    "overrides",
    [{"ratio": -0.1}, {"min_per_window": -1}, {"window_s": 0.0}, {"window_buckets": 0}],
)
def test_invalid_settings_are_rejected(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BudgetSettings(**overrides)  # type: ignore[arg-type]
