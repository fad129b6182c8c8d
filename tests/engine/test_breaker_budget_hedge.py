"""Breakers, retry budgets and hedging, driven by simulator faults and an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from turnout.core.errors import AllAttemptsFailed
from turnout.resilience.breaker import BreakerState
from turnout.resilience.clock import FakeClock
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import EngineFactory, answer_of, call, record_sleep
from .test_failover import FAST, STREAM, upstream_calls

BREAKER = {**FAST, "breaker": {"consecutive_failures": 3, "base_ejection_s": 10,
                               "max_ejection_s": 100, "max_ejected_share": 0.5}}


@pytest.mark.parametrize("stream", STREAM)
async def test_breaker_opens_sends_only_probes_and_closes_after_recovery(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    clock = FakeClock(1000.0)
    engine = await make_engine(["a", "b"], BREAKER, clock=clock)
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    for _ in range(3):  # three consecutive failures (each failed over to b)
        response, served, _ = await call(engine, stream)
        assert served == "b/model-b"
    breaker = engine.state.breakers.breaker("a/model-a")
    assert breaker.state is BreakerState.OPEN
    for _ in range(10):  # while open: no traffic to a at all
        await call(engine, stream)
    assert upstream_calls(sims["a"]) == 3
    sims["a"].faults.clear()
    clock.advance(10.5)  # ejection over: one probe goes to a, succeeds, breaker closes
    response, served, _ = await call(engine, stream)
    assert served == "a/model-a" and response.text() == answer_of("a")
    assert breaker.state is BreakerState.CLOSED
    assert upstream_calls(sims["a"]) == 4


async def test_failed_probe_reopens_with_a_longer_ejection(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    clock = FakeClock(1000.0)
    engine = await make_engine(["a", "b"], BREAKER, clock=clock)
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    for _ in range(3):
        await call(engine, False)
    clock.advance(10.5)
    await call(engine, False)  # the probe fails: re-ejected for 20 s
    breaker = engine.state.breakers.breaker("a/model-a")
    assert breaker.state is BreakerState.OPEN
    assert upstream_calls(sims["a"]) == 4
    clock.advance(15)
    await call(engine, False)
    assert upstream_calls(sims["a"]) == 4  # still ejected after 15 s of 20


async def test_caller_errors_never_open_a_breaker(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    engine = await make_engine(["a", "b"], BREAKER)
    sims["a"].faults.add(Fault(kind="status", status=400, times=-1))
    for _ in range(6):
        with pytest.raises(Exception):  # noqa: B017 - the caller's 400 itself
            await call(engine, False)
    assert engine.state.breakers.breaker("a/model-a").state is BreakerState.CLOSED


async def test_ejection_cap_keeps_a_share_of_targets_in_service(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """Total outage of both targets: at most half may be ejected, so requests still get
    a (fast) real attempt instead of an empty route."""
    clock = FakeClock(1000.0)
    engine = await make_engine(["a", "b"], BREAKER, clock=clock)
    for name in ("a", "b"):
        sims[name].faults.add(Fault(kind="status", status=500, times=-1))
    for _ in range(20):
        with pytest.raises(AllAttemptsFailed) as caught:
            await call(engine, False)
        # Never an empty route: the cap admits the longest-ejected target as a probe.
        assert len(caught.value.attempts) >= 1
    # ... and the outage costs about one attempt per request once breakers are open.
    assert upstream_calls(sims["a"]) + upstream_calls(sims["b"]) <= 20 + 6


async def test_retry_budget_holds_during_a_total_outage(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """One target, always 503, each request allowed 3 attempts: the retry budget (20% of
    requests plus 3 per window) bounds the retries, so load is not multiplied."""
    async def no_sleep(_: float) -> None:
        return None

    policy = {**FAST, "retry": {"max_attempts_per_target": 3, "budget_ratio": 0.2,
                                "min_retries_per_window": 3, "window_s": 60},
              "breaker": {"consecutive_failures": 10_000, "min_calls": 10_000}}
    engine = await make_engine(["a"], policy, sleep=no_sleep)
    sims["a"].faults.add(Fault(kind="status", status=503, times=-1))
    requests = 100
    for _ in range(requests):
        with pytest.raises(AllAttemptsFailed):
            await call(engine, False)
    attempts = upstream_calls(sims["a"])
    assert requests < attempts <= requests + 0.2 * requests + 3


async def test_hedge_wins_over_a_slow_primary_and_the_loser_is_cancelled(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    engine = await make_engine(
        ["a", "b"], {**FAST, "timeouts": {"ttft_s": 30, "per_attempt_s": 60, "total_s": 60},
                     "hedge": {"enabled": True, "delay_s": 0.05, "max_share": 1.0}})
    sims["a"].faults.add(Fault(kind="hang", times=-1))
    _response, served, ctx = await call(engine, True)
    assert served == "b/model-b"
    outcomes = sorted((a.kind, a.outcome) for a in ctx.attempts)
    assert outcomes == [("first", "cancelled"), ("hedge", "ok")]
    health = engine.state.health["a/model-a"]
    for _ in range(50):  # the cancelled primary's connection is released promptly
        if health.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert health.in_flight == 0


async def test_fast_primary_is_never_hedged(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    engine = await make_engine(
        ["a", "b"], {**FAST, "hedge": {"enabled": True, "delay_s": 5, "max_share": 1.0}})
    _response, served, ctx = await call(engine, False)
    assert served == "a/model-a"
    assert [a.kind for a in ctx.attempts] == ["first"]
    assert upstream_calls(sims["b"]) == 0


async def test_hedge_budget_caps_hedged_share(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    engine = await make_engine(
        ["a", "b"], {**FAST, "hedge": {"enabled": True, "delay_s": 0.01, "max_share": 0.1}})
    sims["a"].faults.add(Fault(kind="latency", seconds=0.05, times=-1))
    for _ in range(30):
        await call(engine, False)
    hedges = upstream_calls(sims["b"])
    assert 1 <= hedges <= 0.1 * 30 + 1


async def test_total_outage_of_three_targets_costs_about_one_attempt_per_request(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """With every target failing, breakers open and the ejection cap keeps some admitted as
    probes; failing over to a probe is charged to the retry budget, so attempts per request
    stay near 1 + the budget share instead of one per admitted target."""
    async def no_sleep(_: float) -> None:
        return None

    clock = FakeClock(1000.0)
    policy = {**BREAKER, "retry": {"budget_ratio": 0.2, "min_retries_per_window": 3,
                                   "window_s": 60}}
    engine = await make_engine(["a", "b", "c"], policy, clock=clock, sleep=no_sleep)
    for name in ("a", "b", "c"):
        sims[name].faults.add(Fault(kind="status", status=500, times=-1))
    warmup, requests = 10, 200
    for _ in range(warmup):  # breakers learn the outage
        with pytest.raises(AllAttemptsFailed):
            await call(engine, False)
    before = sum(upstream_calls(sims[n]) for n in ("a", "b", "c"))
    for _ in range(requests):
        with pytest.raises(Exception):  # noqa: B017 - every request fails, fast
            await call(engine, False)
    attempts = sum(upstream_calls(sims[n]) for n in ("a", "b", "c")) - before
    assert attempts <= requests * 1.2 + 3 * 3  # 1 + budget ratio, plus each window floor


async def test_a_routes_own_retry_budget_applies(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """A budget of nothing allows no retry, even of the last target standing: the budget
    is sized by the route's policy, not by the package defaults."""
    sleeps: list[float] = []
    engine = await make_engine(
        ["a"], {**FAST, "retry": {"budget_ratio": 0, "min_retries_per_window": 0}},
        sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=503, times=1))
    with pytest.raises(AllAttemptsFailed) as caught:
        await call(engine, False)
    assert [a.kind for a in caught.value.attempts] == ["first"]
    assert sleeps == []


async def test_no_wait_for_a_retry_that_max_attempts_total_forbids(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """The last target standing would be retried, but the request has used its attempts:
    it fails at once instead of sleeping (and spending the retry budget) first."""
    sleeps: list[float] = []
    engine = await make_engine(["a", "b"], {**FAST, "retry": {"max_attempts_total": 2}},
                               sleep=record_sleep(sleeps))
    for name in ("a", "b"):
        sims[name].faults.add(Fault(kind="status", status=500, times=-1))
    with pytest.raises(AllAttemptsFailed) as caught:
        await call(engine, False)
    assert [a.kind for a in caught.value.attempts] == ["first", "fallback"]
    assert sleeps == []
