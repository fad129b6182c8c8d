"""`retry.order`: fail over first (the default) or retry the same target first, with
Retry-After, retry budgets, attempt limits, breakers and deadlines."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.core.errors import AllAttemptsFailed
from turnout.engine.context import CallContext
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import EngineFactory, answer_of, call, record_sleep
from .test_failover import FAST, STREAM, upstream_calls

RETRY_FIRST: dict[str, Any] = {**FAST, "retry": {"order": "retry_first"}}


def retry_first(**retry: Any) -> dict[str, Any]:
    return {**FAST, "retry": {"order": "retry_first", **retry}}


@pytest.mark.parametrize("stream", STREAM)
async def test_retry_first_retries_the_same_target_before_failing_over(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    engine = await make_engine(["a", "b"], RETRY_FIRST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=503, times=1))
    response, served, ctx = await call(engine, stream)
    assert served == "a/model-a" and response.text() == answer_of("a")
    assert [(a.target, a.kind) for a in ctx.attempts] == [
        ("a/model-a", "first"), ("a/model-a", "retry")]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1  # full jitter under base_delay_s
    assert upstream_calls(sims["b"]) == 0


@pytest.mark.parametrize("stream", STREAM)
async def test_failover_first_stays_the_default(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    engine = await make_engine(["a", "b"], FAST, sleep=record_sleep(sleeps))
    assert engine.runtime.routes["r"].policy.retry.order == "failover_first"
    sims["a"].faults.add(Fault(kind="status", status=503, times=1))
    _response, served, ctx = await call(engine, stream)
    assert served == "b/model-b"
    assert [a.kind for a in ctx.attempts] == ["first", "fallback"]
    assert sleeps == []


@pytest.mark.parametrize("stream", STREAM)
async def test_retry_first_waits_a_short_retry_after(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    engine = await make_engine(["a", "b"], RETRY_FIRST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "2"}))
    _response, served, _ctx = await call(engine, stream)
    assert served == "a/model-a"
    assert sleeps == [2.0]


@pytest.mark.parametrize("stream", STREAM)
async def test_retry_first_fails_over_at_once_on_a_retry_after_over_the_limit(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    """Retry-After 30 s > max_retry_after_s (5 s): not worth sitting out while b can
    answer now."""
    engine = await make_engine(["a", "b"], RETRY_FIRST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "30"}))
    _response, served, ctx = await call(engine, stream)
    assert served == "b/model-b"
    assert [a.kind for a in ctx.attempts] == ["first", "fallback"]
    assert sleeps == []


async def test_retry_first_on_the_last_target_is_bounded_only_by_the_deadline(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
) -> None:
    """With nowhere to fail over to, max_retry_after_s does not apply (as by default)."""
    engine = await make_engine(["a"], RETRY_FIRST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "8"}))
    _response, served, _ctx = await call(engine, False)
    assert served == "a/model-a" and sleeps == [8.0]


@pytest.mark.parametrize("stream", STREAM)
async def test_retry_first_fails_over_when_the_wait_would_pass_the_deadline(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    engine = await make_engine(["a", "b"], RETRY_FIRST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "4"}))
    _response, served, _ctx = await call(engine, stream, ctx=CallContext(timeout_s=3))
    assert served == "b/model-b"
    assert sleeps == []  # 4 s is within max_retry_after_s, but not within the 3 s left


@pytest.mark.parametrize("stream", STREAM)
async def test_retry_first_fails_over_when_the_retry_budget_is_spent(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    engine = await make_engine(
        ["a", "b"], retry_first(budget_ratio=0, min_retries_per_window=0),
        sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=503, times=1))
    _response, served, ctx = await call(engine, stream)
    assert served == "b/model-b"
    assert [a.kind for a in ctx.attempts] == ["first", "fallback"]
    assert sleeps == []


@pytest.mark.parametrize("stream", STREAM)
async def test_retry_first_fails_over_once_the_target_used_its_attempts(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    engine = await make_engine(["a", "b"], retry_first(max_attempts_per_target=3),
                               sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    _response, served, ctx = await call(engine, stream)
    assert served == "b/model-b"
    assert [(a.target, a.kind) for a in ctx.attempts] == [
        ("a/model-a", "first"), ("a/model-a", "retry"), ("a/model-a", "retry"),
        ("b/model-b", "fallback")]
    assert len(sleeps) == 2


async def test_retry_first_respects_max_attempts_total(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
) -> None:
    engine = await make_engine(
        ["a", "b"], retry_first(max_attempts_per_target=2, max_attempts_total=2),
        sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    with pytest.raises(AllAttemptsFailed) as caught:
        await call(engine, False)
    assert [a.kind for a in caught.value.attempts] == ["first", "retry"]
    assert len(sleeps) == 1
    assert upstream_calls(sims["b"]) == 0  # no fallback once the request used its attempts


@pytest.mark.parametrize("stream", STREAM)
async def test_retry_first_does_not_retry_a_target_whose_breaker_opened(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float],
    stream: bool,
) -> None:
    engine = await make_engine(
        ["a", "b"], {**RETRY_FIRST, "breaker": {"consecutive_failures": 1}},
        sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    _response, served, ctx = await call(engine, stream)
    assert served == "b/model-b"
    assert [a.kind for a in ctx.attempts] == ["first", "fallback"]
    assert sleeps == []


async def test_retry_first_fails_over_when_the_breaker_opens_during_the_wait(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator],
) -> None:
    """Another request trips a's breaker while this one sits out its backoff: this one
    goes to b instead of retrying a (or giving up)."""
    engine = await make_engine(
        ["a", "b"], {**RETRY_FIRST, "breaker": {"consecutive_failures": 2}})

    async def trip_meanwhile(_: float) -> None:
        engine.state.breakers.breaker("a/model-a").record_failure()

    engine.state._sleep = trip_meanwhile
    sims["a"].faults.add(Fault(kind="status", status=500, times=1))
    _response, served, ctx = await call(engine, False)
    assert served == "b/model-b"
    assert [a.kind for a in ctx.attempts] == ["first", "fallback"]
    assert upstream_calls(sims["a"]) == 1


def test_unknown_order_is_rejected() -> None:
    from pydantic import ValidationError

    from turnout.config.policies import RetryPolicy

    with pytest.raises(ValidationError):
        RetryPolicy.model_validate({"order": "random"})
