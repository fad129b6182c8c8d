"""Fixtures of the state contract suite: every contract test runs against the in-process
store and the Redis store (one fresh key namespace per test), on one fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _state_redis import connect, drop_namespace, new_namespace, require_redis
from redis.asyncio import Redis

from turnout.resilience.clock import FakeClock
from turnout.state import (
    BudgetLedger,
    MemoryBudgetLedger,
    MemoryRateLimiter,
    RateLimiter,
    RedisBudgetLedger,
    RedisRateLimiter,
)

START = 1_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest.fixture
async def redis(namespace: str) -> AsyncIterator[Redis]:
    """A client on the test server; the test's namespace is deleted afterwards."""
    require_redis()
    client = connect()
    try:
        yield client
    finally:
        await drop_namespace(client, namespace)
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest, clock: FakeClock,
                  namespace: str) -> RateLimiter:
    if request.param == "memory":
        return MemoryRateLimiter(clock)
    client: Redis = request.getfixturevalue("redis")
    return RedisRateLimiter(client, prefix=namespace, clock=clock)


@pytest.fixture(params=["memory", "redis"])
def ledger(request: pytest.FixtureRequest, clock: FakeClock,
                 namespace: str) -> BudgetLedger:
    if request.param == "memory":
        return MemoryBudgetLedger(clock)
    client: Redis = request.getfixturevalue("redis")
    return RedisBudgetLedger(client, prefix=namespace, clock=clock)
