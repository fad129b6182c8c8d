"""The rate-limit contract: GCRA exactness and all-or-nothing admission, identical for
every `RateLimiter` (the in-process one and Redis, see conftest)."""

from __future__ import annotations

import math

import pytest

from turnout.resilience.clock import FakeClock
from turnout.state import Limit, RateLimiter

EXACT = 1e-9


def rpm(key: str = "t:rpm", burst: int = 5, cost: int = 1) -> Limit:
    """60 per minute (one a second), bursting to `burst`."""
    return Limit(key, rate=60, period_s=60.0, burst=burst, cost=cost)


async def test_a_full_bucket_admits_exactly_its_burst(limiter: RateLimiter) -> None:
    remaining = []
    for _ in range(5):
        admission = await limiter.acquire([rpm()])
        assert admission.allowed and admission.denied_by is None
        remaining.append(admission.states[0].remaining)
    assert remaining == [4, 3, 2, 1, 0]
    assert admission.states[0].reset_after == pytest.approx(5.0, abs=EXACT)

    refused = await limiter.acquire([rpm()])
    assert not refused
    assert refused.denied_by is not None and refused.denied_by.limit == rpm()
    assert refused.retry_after == pytest.approx(1.0, abs=EXACT)
    assert refused.states[0].remaining == 0


async def test_the_bucket_refills_at_the_rate(limiter: RateLimiter, clock: FakeClock) -> None:
    for _ in range(5):
        assert await limiter.acquire([rpm()])
    clock.advance(1.0)
    assert await limiter.acquire([rpm()])  # exactly one unit back after one interval
    assert not await limiter.acquire([rpm()])

    clock.advance(2.5)
    assert await limiter.acquire([rpm()])
    last = await limiter.acquire([rpm()])
    assert last.allowed and last.states[0].remaining == 0
    refused = await limiter.acquire([rpm()])
    assert refused.retry_after == pytest.approx(0.5, abs=EXACT)

    clock.advance(refused.retry_after)  # retrying exactly when told succeeds
    assert await limiter.acquire([rpm()])


async def test_an_idle_bucket_refills_only_to_its_burst(limiter: RateLimiter,
                                                        clock: FakeClock) -> None:
    assert await limiter.acquire([rpm()])
    clock.advance(3_600.0)
    admission = await limiter.acquire([rpm()])
    assert admission.states[0].remaining == 4
    assert admission.states[0].reset_after == pytest.approx(1.0, abs=EXACT)


async def test_costs_in_tokens(limiter: RateLimiter) -> None:
    tpm = Limit("t:tpm", rate=1_000, period_s=60.0, burst=1_000, cost=600)
    first = await limiter.acquire([tpm])
    assert first.allowed and first.states[0].remaining == 400
    assert first.states[0].reset_after == pytest.approx(36.0, abs=EXACT)
    refused = await limiter.acquire([tpm])
    # 200 tokens short, at 0.06 s a token.
    assert refused.retry_after == pytest.approx(12.0, abs=EXACT)
    assert refused.states[0].remaining == 400


async def test_rates_with_inexact_intervals_admit_on_time(limiter: RateLimiter,
                                                          clock: FakeClock) -> None:
    per_second = Limit("t:rps", rate=10, period_s=1.0, burst=10)
    for _ in range(10):
        assert await limiter.acquire([per_second])
    assert not await limiter.acquire([per_second])
    for _ in range(30):  # 0.1 s is no binary fraction: the sums must not drift
        clock.advance(0.1)
        assert await limiter.acquire([per_second])
        assert not await limiter.acquire([per_second])


async def test_a_cost_above_the_burst_can_never_pass(limiter: RateLimiter) -> None:
    tpm = Limit("t:tpm", rate=1_000, period_s=60.0, burst=1_000, cost=1_001)
    refused = await limiter.acquire([tpm])
    assert not refused and refused.retry_after == math.inf
    assert refused.states[0].remaining == 1_000  # nothing taken


async def test_a_refused_limit_consumes_nothing_anywhere(limiter: RateLimiter) -> None:
    requests = rpm("t:rpm", burst=5)
    tokens = Limit("t:tpm", rate=100, period_s=60.0, burst=100, cost=80)
    assert await limiter.acquire([requests, tokens])

    refused = await limiter.acquire([requests, tokens])
    assert not refused
    assert refused.denied_by is not None and refused.denied_by.limit == tokens
    assert [s.retry_after > 0 for s in refused.states] == [False, True]
    assert refused.retry_after == pytest.approx(60 * 0.6, abs=EXACT)  # 60 tokens short

    # The requests-per-minute limit gave nothing to the refused call.
    only_requests = await limiter.acquire([requests])
    assert only_requests.states[0].remaining == 3


async def test_the_longest_wait_is_the_one_reported(limiter: RateLimiter) -> None:
    short = rpm("t:a", burst=1)
    long = Limit("t:b", rate=1, period_s=60.0, burst=1)
    assert await limiter.acquire([short, long])
    refused = await limiter.acquire([short, long])
    assert refused.denied_by is not None and refused.denied_by.limit == long
    assert refused.retry_after == pytest.approx(60.0, abs=EXACT)
    assert [s.retry_after for s in refused.states] == pytest.approx([1.0, 60.0], abs=EXACT)


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    assert await limiter.acquire([rpm("tenant:a", burst=1)])
    assert not await limiter.acquire([rpm("tenant:a", burst=1)])
    assert await limiter.acquire([rpm("tenant:b", burst=1)])


async def test_an_explicit_now_is_the_stores_time(limiter: RateLimiter,
                                                  clock: FakeClock) -> None:
    assert await limiter.acquire([rpm(burst=1)], now=clock.monotonic())
    assert not await limiter.acquire([rpm(burst=1)], now=clock.monotonic() + 0.5)
    assert await limiter.acquire([rpm(burst=1)], now=clock.monotonic() + 1.0)


async def test_no_limits_admit(limiter: RateLimiter) -> None:
    admission = await limiter.acquire([])
    assert admission.allowed and admission.states == ()


@pytest.mark.parametrize("limits", [
    [rpm("k"), rpm("k")],
    [Limit("k", rate=0, period_s=60.0, burst=1)],
    [Limit("k", rate=1, period_s=0.0, burst=1)],
    [Limit("k", rate=1, period_s=60.0, burst=0)],
    [Limit("k", rate=1, period_s=60.0, burst=1, cost=-1)],
    [Limit("", rate=1, period_s=60.0, burst=1)],
])
async def test_malformed_limits_are_refused(limiter: RateLimiter, limits: list[Limit]) -> None:
    with pytest.raises(ValueError):
        await limiter.acquire(limits)
