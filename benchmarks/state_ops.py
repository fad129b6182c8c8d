"""Microseconds per shared-state operation: the in-process stores and the Redis stores.

    python benchmarks/state_ops.py [--redis redis://127.0.0.1:6379/0] [-n 5000]

For each operation it prints the mean and p99 latency of calls made one after another
(what one request waits) and, for Redis, the throughput of `--concurrency` callers sharing
one client (what one replica can push through one connection pool). Keys live under a
random prefix and are deleted afterwards; nothing is flushed. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from turnout.resilience.clock import SystemClock
from turnout.state import (
    BudgetLedger,
    Charge,
    Lease,
    Limit,
    MemoryBudgetLedger,
    MemoryRateLimiter,
    RateLimiter,
)

Op = Callable[[int], Awaitable[object]]


def operations(limiter: RateLimiter, ledger: BudgetLedger) -> dict[str, Op]:
    limits = [Limit("tenant:acme:rpm", rate=10**9, period_s=60.0, burst=10**9),
              Limit("tenant:acme:tpm", rate=10**9, period_s=60.0, burst=10**9, cost=800)]
    charges = [Charge("tenant:acme:day", 2**52, 2_000), Charge("key:k1:day", 2**52, 2_000)]

    async def acquire(_: int) -> object:
        return await limiter.acquire(limits)

    async def enter_leave(_: int) -> object:
        lease = await limiter.enter("tenant:acme:cc", 10**6, lease_s=60.0)
        assert isinstance(lease, Lease)
        return await limiter.leave(lease)

    async def reserve_settle(i: int) -> object:
        await ledger.reserve(f"bench-{i}", charges, lease_s=60.0)
        return await ledger.settle(f"bench-{i}", 1_500)

    async def usage(_: int) -> object:
        return await ledger.usage("tenant:acme:day")

    return {"acquire (2 limits)": acquire, "enter + leave": enter_leave,
            "reserve + settle (2 budgets)": reserve_settle, "usage": usage}


async def sequential(op: Op, n: int, ids: itertools.count[int]) -> tuple[float, float]:
    for _ in range(min(n // 10, 500)):  # warm up: scripts loaded, connections open
        await op(next(ids))
    took = []
    for _ in range(n):
        start = time.perf_counter()
        await op(next(ids))
        took.append(time.perf_counter() - start)
    took.sort()
    return statistics.fmean(took) * 1e6, took[int(len(took) * 0.99)] * 1e6


async def concurrent(op: Op, n: int, workers: int, ids: itertools.count[int]) -> float:
    async def worker() -> None:
        for _ in range(n // workers):
            await op(next(ids))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return (n // workers) * workers / (time.perf_counter() - start)


async def report(name: str, limiter: RateLimiter, ledger: BudgetLedger, n: int,
                 workers: int | None) -> None:
    ids = itertools.count()
    for label, op in operations(limiter, ledger).items():
        mean, p99 = await sequential(op, n, ids)
        line = f"{name:<8} {label:<30} {mean:8.1f} us/op   p99 {p99:8.1f} us"
        if workers:
            line += f"   {await concurrent(op, n, workers, ids):9.0f} ops/s x{workers}"
        print(line, flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("-n", type=int, default=5_000, help="calls per operation")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    clock = SystemClock()
    await report("memory", MemoryRateLimiter(clock), MemoryBudgetLedger(clock), args.n, None)

    from turnout.state import RedisBudgetLedger, RedisRateLimiter, redis_client

    client = redis_client(args.redis, timeout_s=2.0)
    prefix = f"turnout-bench-{uuid.uuid4().hex[:8]}"
    try:
        await report("redis", RedisRateLimiter(client, prefix=prefix),
                     RedisBudgetLedger(client, prefix=prefix), args.n, args.concurrency)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{{{prefix}}}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # the gateway runs on uvloop where it can; so do the figures
        asyncio.run(main())
    else:
        uvloop.run(main())
