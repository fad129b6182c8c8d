"""Property tests of the budget contract: any sequence of reserve, settle, sweep and time
passing (each operation is atomic, so a sequence is any interleaving) keeps the ledger equal
to a plain model of it, on the in-process store and on Redis alike:

- a reservation is admitted exactly when every charge fits (`spent + reserved + amount <=
  limit`), so reservations never push `spent + reserved` past a limit;
- `reserved` is always the sum of the live reservations, and once everything is settled or
  swept it is 0 (no reservation leaks);
- `spent` is always the settled actuals plus the swept reservations' full amounts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from _state_redis import connect, drop_namespace, new_namespace, require_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout.resilience.clock import FakeClock
from turnout.state import (
    BudgetDenied,
    BudgetLedger,
    BudgetUsage,
    Charge,
    MemoryBudgetLedger,
    RedisBudgetLedger,
    Reservation,
)

KEYS = ("tenant:a:day", "tenant:a:key:k1", "tenant:b:day")
IDS = tuple(f"r{i}" for i in range(6))

reserves = st.tuples(
    st.just("reserve"), st.sampled_from(IDS),
    st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 30)), max_size=3,
             unique_by=lambda kv: kv[0]),
    st.integers(1, 8).map(lambda n: n * 0.5))
settles = st.tuples(
    st.just("settle"), st.sampled_from(IDS),
    st.one_of(st.integers(0, 40), st.tuples(*(st.integers(0, 40) for _ in KEYS))))
advances = st.tuples(st.just("advance"), st.integers(0, 6).map(lambda n: n * 0.5))
sweeps = st.tuples(st.just("sweep"))
operations = st.lists(st.one_of(reserves, reserves, settles, advances, sweeps), max_size=30)
limits = st.tuples(*(st.integers(0, 60) for _ in KEYS))


@dataclass
class Model:
    """The ledger as plain arithmetic."""

    limits: dict[str, int]
    spent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KEYS, 0))
    reserved: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KEYS, 0))
    live: dict[str, tuple[dict[str, int], float]] = field(default_factory=dict)

    def close(self, rid: str, actual: dict[str, int]) -> None:
        amounts, _ = self.live.pop(rid)
        for key, amount in amounts.items():
            self.reserved[key] -= amount
            self.spent[key] += actual[key]


async def _reserve(ledger: BudgetLedger, model: Model, now: float, rid: str,
                   pairs: list[tuple[str, int]], lease_s: float) -> None:
    charges = [Charge(key, model.limits[key], amount) for key, amount in pairs]
    result = await ledger.reserve(rid, charges, lease_s)
    if rid in model.live:  # a retried reserve: the first one stands
        assert isinstance(result, Reservation)
        assert result.expires_at == model.live[rid][1]
        return
    misfit = [c for c in charges
              if model.spent[c.key] + model.reserved[c.key] + c.amount > c.limit]
    if misfit:
        assert result == BudgetDenied(misfit[0], model.spent[misfit[0].key],
                                      model.reserved[misfit[0].key])
        return
    assert isinstance(result, Reservation) and result.expires_at == now + lease_s
    model.live[rid] = ({c.key: c.amount for c in charges}, now + lease_s)
    for c in charges:
        model.reserved[c.key] += c.amount
        assert model.spent[c.key] + model.reserved[c.key] <= c.limit


async def _settle(ledger: BudgetLedger, model: Model, rid: str,
                  actual: int | tuple[int, ...]) -> None:
    held = model.live.get(rid)
    if isinstance(actual, int):
        per_key = dict.fromkeys(KEYS, actual)
        settled = await ledger.settle(rid, actual)
    else:
        per_key = dict(zip(KEYS, actual, strict=True))
        named = {k: per_key[k] for k in (held[0] if held else KEYS)}
        settled = await ledger.settle(rid, named)
    assert settled is (held is not None)
    if held is not None:
        model.close(rid, per_key)


async def _sweep(ledger: BudgetLedger, model: Model, now: float) -> None:
    expired = sorted(rid for rid, (_, expires_at) in model.live.items() if expires_at <= now)
    swept = await ledger.sweep()
    assert sorted(swept) == expired and len(swept) == len(set(swept))
    for rid in expired:
        model.close(rid, model.live[rid][0])


async def _check(ledger: BudgetLedger, model: Model) -> None:
    for key in KEYS:
        assert await ledger.usage(key) == BudgetUsage(model.spent[key], model.reserved[key])
        live = sum(amounts.get(key, 0) for amounts, _ in model.live.values())
        assert model.reserved[key] == live


async def run_scenario(ledger: BudgetLedger, clock: FakeClock, budget: tuple[int, ...],
                       ops: list[tuple[object, ...]]) -> None:
    model = Model(dict(zip(KEYS, budget, strict=True)))
    for op in ops:
        if op[0] == "reserve":
            await _reserve(ledger, model, clock.monotonic(), *op[1:])  # type: ignore[arg-type]
        elif op[0] == "settle":
            await _settle(ledger, model, *op[1:])  # type: ignore[arg-type]
        elif op[0] == "advance":
            clock.advance(op[1])  # type: ignore[arg-type]
        else:
            await _sweep(ledger, model, clock.monotonic())
        await _check(ledger, model)
    # Settle half of what is left, let the rest expire: nothing may stay reserved.
    for rid in sorted(model.live)[::2]:
        assert await ledger.settle(rid, 1)
        model.close(rid, dict.fromkeys(KEYS, 1))
    clock.advance(1_000.0)
    await _sweep(ledger, model, clock.monotonic())
    await _check(ledger, model)
    assert [await ledger.usage(key) for key in KEYS] == [
        BudgetUsage(model.spent[key], 0) for key in KEYS]
    assert await ledger.sweep() == []
    assert not any([await ledger.settle(rid, 0) for rid in IDS])


PROPERTY = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(budget=limits, ops=operations)
def test_the_in_process_ledger_matches_the_model(budget: tuple[int, ...],
                                                 ops: list[tuple[object, ...]]) -> None:
    clock = FakeClock(start=1_000.0)
    asyncio.run(run_scenario(MemoryBudgetLedger(clock), clock, budget, ops))


@settings(PROPERTY, max_examples=60)
@given(budget=limits, ops=operations)
def test_the_redis_ledger_matches_the_model(budget: tuple[int, ...],
                                            ops: list[tuple[object, ...]]) -> None:
    require_redis()

    async def scenario() -> None:
        client, namespace = connect(), new_namespace()
        clock = FakeClock(start=1_000.0)
        try:
            ledger = RedisBudgetLedger(client, prefix=namespace, clock=clock)
            await run_scenario(ledger, clock, budget, ops)
            leftovers = [k async for k in client.scan_iter(match=f"{{{namespace}}}:res:*")]
            assert leftovers == []  # no reservation record outlives its reservation
        finally:
            await drop_namespace(client, namespace)
            await client.aclose()

    asyncio.run(scenario())
