"""The concurrency-limit contract: leased slots, given back by `leave` or by expiry."""

from __future__ import annotations

import pytest

from turnout.resilience.clock import FakeClock
from turnout.state import Denied, Lease, RateLimiter

EXACT = 1e-9


async def test_slots_up_to_the_limit_then_denied(limiter: RateLimiter,
                                                 clock: FakeClock) -> None:
    leases = [await limiter.enter("t:cc", 3, lease_s=30.0) for _ in range(3)]
    assert all(isinstance(lease, Lease) for lease in leases)
    assert len({lease.lease_id for lease in leases if isinstance(lease, Lease)}) == 3
    assert all(isinstance(lease, Lease) and lease.expires_at == pytest.approx(
        clock.monotonic() + 30.0, abs=EXACT) for lease in leases)

    clock.advance(10.0)
    denied = await limiter.enter("t:cc", 3, lease_s=30.0)
    assert isinstance(denied, Denied)
    assert (denied.key, denied.limit, denied.active) == ("t:cc", 3, 3)
    assert denied.retry_after == pytest.approx(20.0, abs=EXACT)  # the earliest expiry


async def test_leave_frees_a_slot_and_twice_is_harmless(limiter: RateLimiter) -> None:
    first = await limiter.enter("t:cc", 1, lease_s=30.0)
    assert isinstance(first, Lease)
    assert isinstance(await limiter.enter("t:cc", 1, lease_s=30.0), Denied)
    await limiter.leave(first)
    await limiter.leave(first)
    second = await limiter.enter("t:cc", 1, lease_s=30.0)
    assert isinstance(second, Lease)
    await limiter.leave(first)  # a stale lease does not free someone else's slot
    assert isinstance(await limiter.enter("t:cc", 1, lease_s=30.0), Denied)


async def test_an_abandoned_lease_expires(limiter: RateLimiter, clock: FakeClock) -> None:
    crashed = await limiter.enter("t:cc", 1, lease_s=5.0)
    assert isinstance(crashed, Lease)
    clock.advance(4.999)
    assert isinstance(await limiter.enter("t:cc", 1, lease_s=5.0), Denied)
    clock.advance(0.001)
    taken = await limiter.enter("t:cc", 1, lease_s=5.0)
    assert isinstance(taken, Lease)
    await limiter.leave(crashed)  # the crashed holder coming back changes nothing
    assert isinstance(await limiter.enter("t:cc", 1, lease_s=5.0), Denied)


async def test_a_lower_limit_applies_to_slots_already_held(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert isinstance(await limiter.enter("t:cc", 3, lease_s=30.0), Lease)
    denied = await limiter.enter("t:cc", 2, lease_s=30.0)  # a config reload lowered it
    assert isinstance(denied, Denied) and denied.active == 3


async def test_concurrency_keys_are_independent(limiter: RateLimiter) -> None:
    assert isinstance(await limiter.enter("tenant:a", 1, lease_s=30.0), Lease)
    assert isinstance(await limiter.enter("tenant:a", 1, lease_s=30.0), Denied)
    assert isinstance(await limiter.enter("tenant:b", 1, lease_s=30.0), Lease)


@pytest.mark.parametrize(("key", "limit", "lease_s"), [
    ("", 1, 1.0), ("k", 0, 1.0), ("k", 1, 0.0), ("k", 1, float("inf")),
])
async def test_malformed_concurrency_limits_are_refused(
        limiter: RateLimiter, key: str, limit: int, lease_s: float) -> None:
    with pytest.raises(ValueError):
        await limiter.enter(key, limit, lease_s)
