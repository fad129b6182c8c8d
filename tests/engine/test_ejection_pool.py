"""The ejection cap protects the pool a request can fail over within (its whole plan,
fallback routes included); a plan of one deployment is not capped: once its breaker opens,
requests fail fast with ServiceUnavailable and a Retry-After until the next probe."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.core.errors import AllAttemptsFailed, ServiceUnavailable
from turnout.engine.plan import Candidate
from turnout.resilience.breaker import BreakerState
from turnout.resilience.clock import FakeClock
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import EngineFactory, answer_of, ask, call
from .test_failover import FAST, STREAM, upstream_calls

BREAKER: dict[str, Any] = {**FAST, "retry": {"max_attempts_per_target": 1},
                           "breaker": {"consecutive_failures": 3, "base_ejection_s": 10,
                                       "max_ejection_s": 100}}


@pytest.mark.parametrize("stream", STREAM)
async def test_a_one_target_route_opens_its_breaker_and_fails_fast(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    clock = FakeClock(1000.0)
    engine = await make_engine(["a"], BREAKER, clock=clock)
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    for _ in range(3):  # each reaches the upstream and gets its error
        with pytest.raises(AllAttemptsFailed):
            await call(engine, stream)
    breaker = engine.state.breakers.breaker("a/model-a")
    assert breaker.state is BreakerState.OPEN
    clock.advance(4)
    for _ in range(5):
        with pytest.raises(ServiceUnavailable) as caught:
            await call(engine, stream)
        assert caught.value.status == 503 and caught.value.retry_after == 6.0
    assert upstream_calls(sims["a"]) == 3
    # The ejection ends: the next request is the probe; it fails, so a is out for 20 s.
    clock.advance(6)
    with pytest.raises(AllAttemptsFailed):
        await call(engine, stream)
    assert upstream_calls(sims["a"]) == 4
    with pytest.raises(ServiceUnavailable) as caught:
        await call(engine, stream)
    assert caught.value.retry_after == 20.0
    # ... and after those 20 s a successful probe closes it.
    sims["a"].faults.clear()
    clock.advance(20)
    response, served, _ = await call(engine, stream)
    assert served == "a/model-a" and response.text() == answer_of("a")
    assert breaker.state is BreakerState.CLOSED


async def test_fail_fast_does_not_count_against_anything(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """Fast failures are the gateway's own answer: no attempt, nothing in flight, and the
    probe after the ejection still goes through."""
    clock = FakeClock(1000.0)
    engine = await make_engine(["a"], BREAKER, clock=clock)
    sims["a"].faults.add(Fault(kind="status", status=500, times=3))
    for _ in range(3):
        with pytest.raises(AllAttemptsFailed):
            await call(engine, False)
    for _ in range(10):
        with pytest.raises(ServiceUnavailable):
            await call(engine, False)
    assert engine.state.health["a/model-a"].in_flight == 0
    clock.advance(10)
    _response, served, ctx = await call(engine, False)
    assert served == "a/model-a" and [a.kind for a in ctx.attempts] == ["first"]


@pytest.mark.parametrize("stream", STREAM)
async def test_the_cap_spans_fallback_routes(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """Route r has one target and falls back to route s: a pool of two. With the default
    share of 0.5, a stays ejected while b serves, instead of being probed every request."""
    clock = FakeClock(1000.0)
    engine = await make_engine(
        ["a"], BREAKER, clock=clock, fallbacks=["s"],
        extra_routes={"s": {"targets": [{"provider": "b", "model": "model-b"}]}})
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    for _ in range(10):
        _response, served, _ = await call(engine, stream)
        assert served == "b/model-b"
    assert upstream_calls(sims["a"]) == 3  # three failures opened it; then no traffic
    assert engine.state.breakers.breaker("a/model-a").state is BreakerState.OPEN


async def test_a_total_outage_across_fallback_routes_keeps_one_target_probed(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """Both deployments of the plan fail: the cap keeps one of the two admitted, so the
    plan never empties (each request still gets a real attempt)."""
    clock = FakeClock(1000.0)
    engine = await make_engine(
        ["a"], BREAKER, clock=clock, fallbacks=["s"],
        extra_routes={"s": {"targets": [{"provider": "b", "model": "model-b"}]}})
    for name in ("a", "b"):
        sims[name].faults.add(Fault(kind="status", status=500, times=-1))
    for _ in range(12):
        with pytest.raises(AllAttemptsFailed) as caught:
            await call(engine, False)
        assert caught.value.attempts


async def test_a_plan_naming_one_deployment_twice_is_a_pool_of_one(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    clock = FakeClock(1000.0)
    engine = await make_engine(
        ["a"], BREAKER, clock=clock, fallbacks=["s"],
        extra_routes={"s": {"targets": [{"provider": "a", "model": "model-a"}]}})
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    with pytest.raises(AllAttemptsFailed):  # a via r, a via s, s's retry: three failures
        await call(engine, False)
    with pytest.raises(ServiceUnavailable):
        await call(engine, False)
    assert upstream_calls(sims["a"]) == 3


async def test_only_probes_under_way_means_retry_in_a_second(
    make_engine: EngineFactory,
) -> None:
    """Half open with its probe slot taken (another request is probing): fail fast too,
    with the shortest Retry-After, since the probe's answer is due any moment."""
    clock = FakeClock(1000.0)
    engine = await make_engine(["a"], BREAKER, clock=clock)
    plan = engine.plan(ask())
    breaker = engine.state.breakers.breaker("a/model-a")
    assert engine.state.fail_fast(plan) is None  # closed: nothing to fail fast about
    for _ in range(5):
        breaker.record_failure()
    clock.advance(100)
    assert breaker.allow()  # a probe takes the only slot
    error = engine.state.fail_fast(plan)
    assert isinstance(error, ServiceUnavailable) and error.retry_after == 1.0
    assert engine.state.fail_fast(list[Candidate]()) is None
