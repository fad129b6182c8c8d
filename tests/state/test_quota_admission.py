"""One call's quota asked at once (`SharedStores.admit`/`release`): rate limits,
concurrency slots and a budget reservation, all or nothing, on the in-process stores and
on Redis (one script, `turnout.state.redis_quota`), which must answer alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _state_redis import REDIS_URL, connect, drop_namespace, new_namespace, require_redis
from redis.asyncio import Redis

from turnout.config.runtime import SharedStateSettings
from turnout.resilience.clock import FakeClock, SystemClock
from turnout.stages.shared_stores import SharedStores
from turnout.state import RedisBudgetLedger
from turnout.state.admission import Slot
from turnout.state.budgets import Charge
from turnout.state.limits import Limit
from turnout.state.redis_quota import RedisQuota

LEASE_S = 60.0


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    require_redis()
    namespace = new_namespace()
    client = connect()
    try:
        yield client, namespace
    finally:
        await drop_namespace(client, namespace)
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[SharedStores]:
    if request.param == "memory":
        found = SharedStores(SharedStateSettings(), SystemClock())
        yield found
        await found.aclose()
        return
    require_redis()
    namespace = new_namespace()
    client = connect()
    found = SharedStores(SharedStateSettings(redis_url=REDIS_URL, prefix=namespace),
                         SystemClock(), client)
    try:
        yield found
    finally:
        await found.aclose()
        await drop_namespace(client, namespace)
        await client.aclose()


async def reserved(stores: SharedStores, key: str) -> tuple[int, int]:
    usage = await stores._budgets.usage(key)
    return usage.spent, usage.reserved


def rpm(key: str, rate: int) -> Limit:
    return Limit(key, rate, 60.0, rate, 1)


async def test_everything_is_taken_together_and_released_at_the_actual_cost(
        stores: SharedStores) -> None:
    granted = await stores.admit([rpm("rl:k", 10)], [Slot("cc:k", 2)],
                                 [Charge("b:day", 1_000, 300), Charge("b:month", 5_000, 300)],
                                 LEASE_S)
    assert granted.allowed and len(granted.leases) == 1 and granted.held is not None
    assert granted.admission is not None and granted.admission.states[0].remaining == 9
    assert await reserved(stores, "b:day") == (0, 300)
    spent = await stores.release(granted, {"b:day": 120, "b:month": 120})
    assert spent == {"b:day": 120, "b:month": 120}
    assert await reserved(stores, "b:day") == (0 + 120, 0)
    # The slot is free again: a limit of one admits the next call.
    again = await stores.admit([], [Slot("cc:k", 1)], [], LEASE_S)
    assert again.allowed
    await stores.release(again, None)


async def test_a_budget_refusal_consumes_no_rate_limit_and_takes_no_slot(
        stores: SharedStores) -> None:
    refused = await stores.admit([rpm("rl:one", 1)], [Slot("cc:one", 1)],
                                 [Charge("b:small", 100, 101)], LEASE_S)
    assert not refused.allowed and refused.budget_denied is not None
    assert refused.budget_denied.charge.key == "b:small" and not refused.leases
    assert refused.held is None
    assert await reserved(stores, "b:small") == (0, 0)
    # The one request per minute and the one slot are still there.
    admitted = await stores.admit([rpm("rl:one", 1)], [Slot("cc:one", 1)],
                                  [Charge("b:small", 100, 100)], LEASE_S)
    assert admitted.allowed
    await stores.release(admitted, {"b:small": 0})


async def test_a_full_slot_refuses_and_reserves_nothing(stores: SharedStores) -> None:
    first = await stores.admit([], [Slot("cc:full", 1)], [], LEASE_S)
    assert first.allowed
    second = await stores.admit([rpm("rl:full", 5)], [Slot("cc:full", 1)],
                                [Charge("b:full", 1_000, 10)], LEASE_S)
    assert not second.allowed and second.slot_denied is not None
    assert second.slot_denied.limit == 1 and second.slot_denied.active == 1
    assert await reserved(stores, "b:full") == (0, 0)
    await stores.release(first, None)
    third = await stores.admit([rpm("rl:full", 5)], [Slot("cc:full", 1)],
                               [Charge("b:full", 1_000, 10)], LEASE_S)
    assert third.allowed
    # The refused call consumed none of the five requests per minute.
    assert third.admission is not None and third.admission.states[0].remaining == 4
    await stores.release(third, {"b:full": 10})


async def test_a_rate_limit_refusal_holds_nothing(stores: SharedStores) -> None:
    ok = await stores.admit([rpm("rl:rate", 1)], [], [], LEASE_S)
    assert ok.allowed
    refused = await stores.admit([rpm("rl:rate", 1)], [Slot("cc:rate", 1)],
                                 [Charge("b:rate", 1_000, 10)], LEASE_S)
    assert not refused.allowed and refused.admission is not None
    assert not refused.admission.allowed and refused.admission.retry_after > 0
    assert await reserved(stores, "b:rate") == (0, 0)
    assert (await stores.admit([], [Slot("cc:rate", 1)], [], LEASE_S)).allowed


async def test_a_retried_script_admits_once(redis: tuple[Redis, str]) -> None:
    """redis-py retries a script once after a lost reply: the second run must not take
    the slot and the budget again."""
    client, namespace = redis
    quota = RedisQuota(client, prefix=namespace)
    ledger = RedisBudgetLedger(client, prefix=namespace)
    charges = [Charge("b:retry", 1_000, 600)]
    lease_ids = iter(["lease-a", "lease-a"])  # the retry sends the very same arguments
    quota._ids = lease_ids  # type: ignore[assignment]
    first = await quota.admit("res-1", [], [Slot("cc:retry", 1)], charges, LEASE_S)
    second = await quota.admit("res-1", [], [Slot("cc:retry", 1)], charges, LEASE_S)
    assert first.allowed and second.allowed
    assert (await ledger.usage("b:retry")).reserved == 600
    assert await client.zcard(f"{{{namespace}}}:cc:cc:retry") == 1


async def test_the_budget_ledger_sweeps_what_the_quota_script_reserved(
        redis: tuple[Redis, str]) -> None:
    """Both use the same keys: a replica that died holding a reservation made by `admit`
    is settled by any replica's sweep at the reserved amount."""
    client, namespace = redis
    clock = FakeClock(start=1_000.0)
    quota = RedisQuota(client, prefix=namespace, clock=clock)
    ledger = RedisBudgetLedger(client, prefix=namespace, clock=clock)
    grant = await quota.admit("res-dead", [], [], [Charge("b:dead", 1_000, 250)], LEASE_S)
    assert grant.allowed
    clock.advance(LEASE_S + 1)
    assert await ledger.sweep() == ["res-dead"]
    assert await ledger.usage("b:dead") == (250, 0)
    # Settling afterwards (a late release) changes nothing.
    assert await quota.release([], "res-dead", {"b:dead": 1}) == {}
    assert await ledger.usage("b:dead") == (250, 0)
