"""What only the Redis stores do: several replicas on one server, key layout and TTLs,
the server's clock, and `StateUnavailable` when the server is gone."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from _state_redis import connect, drop_namespace, require_redis
from redis.asyncio import Redis
from redis.crc import key_slot

from turnout.resilience.clock import FakeClock
from turnout.state import (
    BudgetUsage,
    Charge,
    Lease,
    Limit,
    RedisBudgetLedger,
    RedisRateLimiter,
    Reservation,
    StateUnavailable,
    redis_client,
)


@pytest.fixture
async def replicas(namespace: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two clients with their own connection pools, standing in for two gateway replicas."""
    require_redis()
    first, second = connect(), connect()
    try:
        yield first, second
    finally:
        await drop_namespace(first, namespace)
        await first.aclose()
        await second.aclose()


async def test_two_replicas_admit_exactly_one_reservation(
        replicas: tuple[Redis, Redis], namespace: str) -> None:
    ledgers = [RedisBudgetLedger(client, prefix=namespace) for client in replicas]
    charges = [Charge("tenant:acme:day", 1_000, 600), Charge("key:k1:day", 5_000, 600)]
    results = await asyncio.gather(*(
        ledgers[i % 2].reserve(f"r{i}", charges, lease_s=60.0) for i in range(50)))
    admitted = [r for r in results if isinstance(r, Reservation)]
    assert len(admitted) == 1
    for ledger in ledgers:
        assert await ledger.usage("tenant:acme:day") == BudgetUsage(0, 600)
        assert await ledger.usage("key:k1:day") == BudgetUsage(0, 600)
    # Settling from the other replica, twice and concurrently, still counts once.
    winner = admitted[0].reservation_id
    settled = await asyncio.gather(ledgers[0].settle(winner, 550),
                                   ledgers[1].settle(winner, 550))
    assert sorted(settled) == [False, True]
    assert await ledgers[1].usage("tenant:acme:day") == BudgetUsage(550, 0)


async def test_rate_limits_hold_across_replicas(
        replicas: tuple[Redis, Redis], namespace: str) -> None:
    limiters = [RedisRateLimiter(client, prefix=namespace) for client in replicas]
    requests = Limit("tenant:acme:rpm", rate=10, period_s=3_600.0, burst=10)
    tokens = Limit("tenant:acme:tpm", rate=1_000, period_s=3_600.0, burst=1_000, cost=150)
    results = await asyncio.gather(*(
        limiters[i % 2].acquire([requests, tokens]) for i in range(40)))
    assert sum(r.allowed for r in results) == 6  # tokens run out first: 6 * 150 <= 1000
    slots = await asyncio.gather(*(
        limiters[i % 2].enter("tenant:acme:cc", 3, lease_s=60.0) for i in range(20)))
    assert sum(isinstance(s, Lease) for s in slots) == 3


async def test_the_servers_clock_by_default(redis: Redis, namespace: str) -> None:
    limiter = RedisRateLimiter(redis, prefix=namespace)
    before = time.time()
    lease = await limiter.enter("c", 1, lease_s=30.0)
    assert isinstance(lease, Lease)
    # The server runs on this machine: its clock is this machine's wall clock.
    assert before + 29.0 < lease.expires_at < time.time() + 31.0
    ledger = RedisBudgetLedger(redis, prefix=namespace)
    reservation = await ledger.reserve("r1", [Charge("k", 10, 1)], lease_s=0.05)
    assert isinstance(reservation, Reservation)
    await asyncio.sleep(0.1)
    assert await ledger.sweep() == ["r1"]


async def test_keys_share_one_hash_tag_and_carry_ttls(redis: Redis, namespace: str) -> None:
    clock = FakeClock(start=1_000.0)
    limiter = RedisRateLimiter(redis, prefix=namespace, clock=clock)
    ledger = RedisBudgetLedger(redis, prefix=namespace, clock=clock)
    await limiter.acquire([Limit("rpm", rate=60, period_s=60.0, burst=60, cost=30)])
    await limiter.enter("cc", 2, lease_s=20.0)
    await ledger.reserve("r1", [Charge("day", 100, 1, ttl_s=86_400.0),
                                Charge("month", 100, 1)], lease_s=60.0)

    keys = sorted([k.decode() async for k in redis.scan_iter(match=f"{{{namespace}}}:*")])
    assert len({key_slot(k.encode()) for k in keys}) == 1
    ttl = {k.removeprefix(f"{{{namespace}}}:"): await redis.pttl(k) for k in keys}
    assert 30_000 < ttl["rl:rpm"] <= 30_000 + 5_000  # full again in 30 s, plus slack
    assert 20_000 < ttl["cc:cc"] <= 25_000
    assert 86_399_000 < ttl["b:day"] <= 86_400_000
    assert 35 * 86_400_000 - 1_000 < ttl["b:month"] <= 35 * 86_400_000  # the default
    assert 3_659_000 < ttl["res:r1"] <= 3_660_000  # the lease plus an hour for the sweep
    assert ttl["leases:all"] == -1  # holds only live ids: settle and sweep remove them
    await ledger.settle("r1", 1)
    assert await redis.exists(f"{{{namespace}}}:res:r1") == 0
    assert await redis.zcard(f"{{{namespace}}}:leases:all") == 0


async def test_prefixes_isolate_stores(redis: Redis, namespace: str) -> None:
    ours = RedisBudgetLedger(redis, prefix=namespace)
    theirs = RedisBudgetLedger(redis, prefix=f"{namespace}-other")
    try:
        await ours.reserve("r1", [Charge("k", 10, 10)], lease_s=60.0)
        assert isinstance(await theirs.reserve("r1", [Charge("k", 10, 10)], 60.0), Reservation)
        assert await theirs.settle("r1", 3) and await ours.usage("k") == BudgetUsage(0, 10)
    finally:
        await drop_namespace(redis, f"{namespace}-other")


async def test_a_settle_after_the_key_expired_recreates_it_with_a_ttl(
        redis: Redis, namespace: str) -> None:
    ledger = RedisBudgetLedger(redis, prefix=namespace)
    await ledger.reserve("r1", [Charge("k", 10, 4, ttl_s=86_400.0)], lease_s=60.0)
    await redis.delete(f"{{{namespace}}}:b:k")  # as if it had expired
    assert await ledger.settle("r1", 3)
    assert await ledger.usage("k") == BudgetUsage(3, 0)
    assert 86_399_000 < await redis.pttl(f"{{{namespace}}}:b:k") <= 86_400_000


async def test_a_foreign_value_under_a_key_is_state_unavailable(
        redis: Redis, namespace: str) -> None:
    await redis.set(f"{{{namespace}}}:b:k", "not a hash")
    ledger = RedisBudgetLedger(redis, prefix=namespace)
    with pytest.raises(StateUnavailable, match="refused"):
        await ledger.reserve("r1", [Charge("k", 10, 1)], lease_s=60.0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_server_is_state_unavailable() -> None:
    client = redis_client(f"redis://127.0.0.1:{_closed_port()}/0", timeout_s=0.5)
    limiter, ledger = RedisRateLimiter(client), RedisBudgetLedger(client)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: limiter.acquire([Limit("k", rate=1, period_s=1.0, burst=1)]),
        lambda: limiter.enter("k", 1, lease_s=1.0),
        lambda: limiter.leave(Lease("k", "id", 0.0)),
        lambda: ledger.reserve("r1", [Charge("k", 1, 1)], lease_s=1.0),
        lambda: ledger.settle("r1", 1),
        lambda: ledger.sweep(),
        lambda: ledger.usage("k"),
    ]
    started = time.monotonic()
    try:
        for call in calls:
            with pytest.raises(StateUnavailable, match="unreachable") as caught:
                await call()
            assert caught.value.status == 503 and caught.value.__cause__ is not None
    finally:
        await client.aclose()
    assert time.monotonic() - started < 5.0  # no long retry loop on the request path

