"""What only the in-process stores do: forget keys that hold nothing, expire budgets, and
stay exact when many tasks of one event loop call at once."""

from __future__ import annotations

import asyncio

from turnout.resilience.clock import FakeClock
from turnout.state import (
    BudgetUsage,
    Charge,
    Lease,
    Limit,
    MemoryBudgetLedger,
    MemoryRateLimiter,
    Reservation,
)


async def test_prune_forgets_full_buckets_and_empty_slots() -> None:
    clock = FakeClock(start=0.0)
    limiter = MemoryRateLimiter(clock)
    limit = Limit("k", rate=60, period_s=60.0, burst=5)
    assert await limiter.acquire([limit])
    lease = await limiter.enter("c", 1, lease_s=5.0)
    assert isinstance(lease, Lease)
    assert limiter.prune() == 0
    clock.advance(5.0)  # the bucket is full again after 1 s, the lease expired at 5 s
    assert limiter.prune() == 2
    assert limiter.prune() == 0
    assert (await limiter.acquire([limit])).states[0].remaining == 4


async def test_budget_keys_expire_after_their_ttl() -> None:
    clock = FakeClock(start=0.0)
    ledger = MemoryBudgetLedger(clock)
    day = Charge("tenant:a:day", 100, 10, ttl_s=86_400.0)
    await ledger.reserve("r1", [day], lease_s=60.0)
    await ledger.settle("r1", 10)
    clock.advance(86_399.0)
    assert await ledger.usage(day.key) == BudgetUsage(10, 0)
    clock.advance(1.0)
    assert await ledger.usage(day.key) == BudgetUsage(0, 0)
    await ledger.sweep()
    assert not ledger._budgets  # the sweep dropped the expired key


async def test_a_short_ttl_never_ends_a_key_before_its_reservation() -> None:
    clock = FakeClock(start=0.0)
    ledger = MemoryBudgetLedger(clock)
    await ledger.reserve("r1", [Charge("k", 100, 10, ttl_s=1.0)], lease_s=600.0)
    clock.advance(599.0)
    assert await ledger.usage("k") == BudgetUsage(0, 10)
    assert await ledger.settle("r1", 7)
    assert await ledger.usage("k") == BudgetUsage(7, 0)


async def test_a_sweep_far_behind_restarts_an_expired_key_without_going_negative() -> None:
    clock = FakeClock(start=0.0)
    ledger = MemoryBudgetLedger(clock, default_ttl_s=1.0)
    await ledger.reserve("r1", [Charge("k", 100, 10)], lease_s=1.0)
    clock.advance(10 * 3_600.0)  # well past the key's life
    assert await ledger.sweep() == ["r1"]
    assert await ledger.usage("k") == BudgetUsage(10, 0)


async def test_concurrent_tasks_cannot_overspend() -> None:
    ledger = MemoryBudgetLedger(FakeClock())
    results = await asyncio.gather(*(
        ledger.reserve(f"r{i}", [Charge("k", 100, 30)], lease_s=60.0) for i in range(50)))
    assert sum(isinstance(r, Reservation) for r in results) == 3
    assert await ledger.usage("k") == BudgetUsage(0, 90)


async def test_an_id_reserved_again_after_settling_is_swept_at_its_new_lease_only() -> None:
    """Found by the property test: the first lease's expiry, still queued for the sweep,
    must not sweep the second reservation under the same id before its own lease ends."""
    clock = FakeClock(start=1_000.0)
    ledger = MemoryBudgetLedger(clock)
    await ledger.reserve("r0", [], 0.5)
    assert await ledger.settle("r0", 0)
    await ledger.reserve("r0", [Charge("day", 10, 4)], 1.0)
    clock.advance(0.5)
    assert await ledger.sweep() == []
    assert (await ledger.usage("day")).reserved == 4
    clock.advance(0.5)
    assert await ledger.sweep() == ["r0"]
    assert await ledger.usage("day") == (4, 0)
