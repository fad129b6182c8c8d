"""Property tests of GCRA: the in-process limiter keeps the algorithm's conformance bound
and its `retry_after` is exact; the Redis limiter answers every sequence exactly as the
in-process one does (the same doubles, the same `Admission`s)."""

from __future__ import annotations

import asyncio
import math

from _state_redis import connect, drop_namespace, new_namespace, require_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout.resilience.clock import FakeClock
from turnout.state import Lease, Limit, MemoryRateLimiter, RedisRateLimiter

PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

shapes = st.tuples(st.integers(1, 200), st.sampled_from([1.0, 0.1, 7.0, 60.0]),
                   st.integers(1, 50))
steps = st.lists(st.tuples(st.floats(0.0, 3.0, allow_nan=False), st.integers(0, 60)),
                 max_size=40)


@PROPERTY
@given(shape=shapes, attempts=steps)
def test_admitted_cost_never_exceeds_burst_plus_refill(
        shape: tuple[int, float, int], attempts: list[tuple[float, int]]) -> None:
    rate, period_s, burst = shape
    interval = period_s / rate
    clock = FakeClock(start=50.0)
    limiter = MemoryRateLimiter(clock)
    admitted: list[tuple[float, int]] = []

    async def scenario() -> None:
        for pause, cost in attempts:
            clock.advance(pause)
            limit = Limit("k", rate, period_s, burst, cost)
            admission = await limiter.acquire([limit])
            if admission.allowed:
                admitted.append((clock.monotonic(), cost))
                continue
            wait = admission.retry_after
            assert wait > 0
            if math.isinf(wait):
                assert cost > burst
                continue
            # retry_after is exact: a little earlier is still refused, on time is admitted.
            if wait > 1e-3 * interval:
                early = clock.monotonic() + wait - 1e-3 * interval
                assert not await limiter.acquire([limit], now=early)
            clock.advance(wait)
            assert await limiter.acquire([limit])
            admitted.append((clock.monotonic(), cost))

    asyncio.run(scenario())
    # GCRA's bound: over any window, at most a burst plus what refilled during it.
    for i, (start, _) in enumerate(admitted):
        total = 0
        for at, cost in admitted[i:]:
            total += cost
            assert total <= burst + (at - start) / interval + 1e-6


operations = st.lists(st.one_of(
    st.tuples(st.just("acquire"),
              st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 12)), min_size=1,
                       max_size=3, unique_by=lambda kv: kv[0])),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.1, 0.25, 0.37, 1.0, 6.0])),
    st.tuples(st.just("enter"), st.sampled_from("xy")),
    st.tuples(st.just("leave"), st.integers(0, 5)),
), max_size=40)

SHAPES = {"a": (10, 1.0, 10), "b": (60, 60.0, 5), "c": (1_000, 60.0, 40)}


@settings(PROPERTY, max_examples=50)
@given(ops=operations)
def test_redis_answers_exactly_as_the_in_process_limiter(
        ops: list[tuple[object, ...]]) -> None:
    require_redis()

    async def scenario() -> None:
        client, namespace = connect(), new_namespace()
        clock = FakeClock(start=1_700_000_000.0)  # epoch-sized, like the server's clock
        memory = MemoryRateLimiter(clock)
        redis = RedisRateLimiter(client, prefix=namespace, clock=clock)
        leases: list[tuple[Lease, Lease]] = []
        try:
            for op in ops:
                if op[0] == "acquire":
                    limits = [Limit(k, *SHAPES[k], cost=c) for k, c in op[1]]  # type: ignore[attr-defined]
                    assert await memory.acquire(limits) == await redis.acquire(limits)
                elif op[0] == "advance":
                    clock.advance(op[1])  # type: ignore[arg-type]
                elif op[0] == "enter":
                    ours, theirs = (await memory.enter(str(op[1]), 2, lease_s=2.0),
                                    await redis.enter(str(op[1]), 2, lease_s=2.0))
                    assert type(ours) is type(theirs)
                    if isinstance(ours, Lease) and isinstance(theirs, Lease):
                        assert ours.expires_at == theirs.expires_at
                        leases.append((ours, theirs))
                    else:
                        assert ours == theirs
                elif leases:
                    ours, theirs = leases[op[1] % len(leases)]  # type: ignore[operator]
                    await memory.leave(ours)
                    await redis.leave(theirs)
        finally:
            await drop_namespace(client, namespace)
            await client.aclose()

    asyncio.run(scenario())
