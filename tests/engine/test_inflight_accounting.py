"""In-flight counts and breaker probe slots are released however an attempt ends: an
exception of any type (a bug of ours, not only a `TurnoutError`) or a cancellation, at
every step of an attempt, stream or not, hedged or not. Such exceptions still reach the
caller as they are (the gateway answers them as a 500 in the client's dialect)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from turnout.core.errors import AllAttemptsFailed, InternalError
from turnout.engine import executor
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.resilience.breaker import BreakerState
from turnout.resilience.clock import FakeClock
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from ._inject import CHAT_STEPS, HOLD, STREAM_STEPS, InjectingTransport, Injector, install
from .conftest import EngineFactory, answer_of, ask, call
from .test_failover import FAST, STREAM

KINDS: dict[str, Callable[[], BaseException] | str] = {
    "bug": lambda: TypeError("injected bug"),
    "gateway-error": lambda: InternalError("injected gateway error"),
    "cancelled": HOLD,
}
RAISED: dict[str, type[BaseException]] = {
    "bug": TypeError, "gateway-error": InternalError, "cancelled": asyncio.CancelledError}
MATRIX = [pytest.param(False, step, id=f"non-stream-{step}") for step in CHAT_STEPS] + [
    pytest.param(True, step, id=f"stream-{step}") for step in STREAM_STEPS]

# Half-open breakers (see `half_open`) make every call a probe, so a leaked slot shows.
HEDGED = {"hedge": {"enabled": True, "delay_s": 0.01, "max_share": 1.0}}
"""Hedge at once (the engine's sleep is instant); default, generous timeouts, so that no
deadline passes while an attempt waits at a gate."""


async def instant(_: float) -> None:
    return None


@pytest.fixture
def injector(monkeypatch: pytest.MonkeyPatch, sims: dict[str, RunningSimulator]) -> Injector:
    injector = Injector(sims)
    install(monkeypatch, injector)
    return injector


async def engine_for(make_engine: EngineFactory, injector: Injector, targets: list[str],
                     policy: dict[str, Any]) -> tuple[Engine, FakeClock]:
    clock = FakeClock(1000.0)
    engine = await make_engine(targets, policy, clock=clock, sleep=instant,
                               transport=InjectingTransport(injector))
    half_open(engine, clock, targets)
    return engine, clock


def half_open(engine: Engine, clock: FakeClock, sims: list[str]) -> None:
    """Trip each deployment's breaker (package defaults: 5 failures, 5 s) and let the
    ejection pass: the next call to each is a probe, holding its single probe slot."""
    for sim in sims:
        breaker = engine.state.breakers.breaker(f"{sim}/model-{sim}")
        for _ in range(5):
            breaker.record_failure()
    clock.advance(6)
    for sim in sims:
        assert engine.state.breakers.breaker(f"{sim}/model-{sim}").state is (
            BreakerState.HALF_OPEN)


def assert_released(engine: Engine, sims: list[str]) -> None:
    for sim in sims:
        deployment = f"{sim}/model-{sim}"
        health = engine.state.health.get(deployment)
        assert health is None or health.in_flight == 0, deployment
        snapshot = engine.state.breakers.breaker(deployment).snapshot()
        assert snapshot.probes_in_flight == 0, deployment
        # Nothing here was the upstream's fault: no breaker (re)opened.
        assert snapshot.state is not BreakerState.OPEN, deployment


async def run_until_fired(injector: Injector, call_it: asyncio.Task[Any], how: Any) -> None:
    """Let the call reach the injected step; a held step is then cancelled (the caller
    goes away exactly there)."""
    fired = asyncio.ensure_future(injector.fired.wait())
    await asyncio.wait({fired, call_it}, return_when=asyncio.FIRST_COMPLETED)
    fired.cancel()
    if how == HOLD and not call_it.done():
        call_it.cancel()


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("stream", "step"), MATRIX)
async def test_any_failure_at_any_step_releases_in_flight_and_the_probe(
    make_engine: EngineFactory, injector: Injector, stream: bool, step: str, kind: str,
) -> None:
    engine, _clock = await engine_for(make_engine, injector, ["a"], FAST)
    how = KINDS[kind]
    injector.fail("a", step, how)  # type: ignore[arg-type]
    call_it = asyncio.ensure_future(call(engine, stream))
    await run_until_fired(injector, call_it, how)
    with pytest.raises(RAISED[kind]):
        await call_it
    assert injector.fired.is_set()
    assert_released(engine, ["a"])
    # ... and the deployment serves the next request (its probe slot is free).
    injector.failures.clear()
    _response, served, _ = await call(engine, stream)
    assert served == "a/model-a"


@pytest.mark.parametrize("stream", STREAM)
async def test_a_bug_reaches_the_caller_as_it_is(
    make_engine: EngineFactory, injector: Injector, stream: bool,
) -> None:
    """Not retried, not sent down the chain, not wrapped: b is never asked."""
    engine, _clock = await engine_for(make_engine, injector, ["a", "b"], FAST)
    injector.fail("a", "build", KINDS["bug"])  # type: ignore[arg-type]
    ctx = CallContext()
    with pytest.raises(TypeError, match="injected bug"):
        await call(engine, stream, ctx=ctx)
    assert [(a.target, a.outcome) for a in ctx.attempts] == [("a/model-a", "error")]
    assert not injector.started["b"].is_set()
    assert_released(engine, ["a", "b"])


async def test_closing_a_stream_nobody_read_ends_it(
    make_engine: EngineFactory, injector: Injector,
) -> None:
    """The caller got the stream, then went away before reading a single event (the
    gateway, when the client leaves while the response headers are sent)."""
    engine, _clock = await engine_for(make_engine, injector, ["a"], FAST)
    outcome = await engine.stream(ask())
    assert engine.state.health["a/model-a"].in_flight == 1
    await outcome.batches.aclose()
    assert_released(engine, ["a"])


async def test_client_leaving_mid_stream_releases_everything(
    make_engine: EngineFactory, injector: Injector,
) -> None:
    """The caller read the first content, then closed the stream while the upstream was
    still sending (held after its first content)."""
    engine, _clock = await engine_for(make_engine, injector, ["a"], FAST)
    injector.fail("a", "relay", HOLD)
    outcome = await engine.stream(ask())
    first = await anext(outcome.batches)
    assert first
    await outcome.batches.aclose()
    assert_released(engine, ["a"])


# -- hedged attempts ----------------------------------------------------------------------
HEDGE_MATRIX = [
    pytest.param(stream, role, step, id=f"{'stream' if stream else 'non-stream'}-{role}-{step}")
    for stream, steps in ((False, CHAT_STEPS), (True, STREAM_STEPS))
    for role in ("primary", "hedge") for step in steps
    # The primary's build comes before the hedge exists: covered above.
    if not (role == "primary" and step == "build")]


@pytest.mark.parametrize("kind", ["bug", "gateway-error"])
@pytest.mark.parametrize(("stream", "role", "step"), HEDGE_MATRIX)
async def test_failure_inside_a_hedge_race_releases_both_attempts(
    make_engine: EngineFactory, injector: Injector, stream: bool, role: str, step: str,
    kind: str,
) -> None:
    """a (primary) and c (hedge) both wait before sending until both attempts exist; then
    one of them fails at `step` and the other goes on. Before the first byte, the other
    one answers; in the relay, the failing one had already won and the caller gets its
    error."""
    engine, _clock = await engine_for(make_engine, injector, ["a", "c"], HEDGED)
    victim, other = ("a", "c") if role == "primary" else ("c", "a")
    gates = {sim: injector.gate(sim) for sim in ("a", "c")}
    injector.fail(victim, step, KINDS[kind])  # type: ignore[arg-type]
    call_it = asyncio.ensure_future(call(engine, stream))
    await injector.started["a"].wait()
    await injector.started["c"].wait()  # the hedge began: both attempts are in the race
    gates[victim].set()
    await run_until_fired(injector, call_it, None)
    gates[other].set()
    if step == "relay":
        with pytest.raises(RAISED[kind]):
            await call_it
    else:
        response, served, _ctx = await call_it
        assert served == f"{other}/model-{other}" and response.text() == answer_of(other)
    assert_released(engine, ["a", "c"])


@pytest.mark.parametrize("stream", STREAM)
async def test_client_leaving_during_a_hedge_race_releases_both_attempts(
    make_engine: EngineFactory, injector: Injector, stream: bool,
) -> None:
    engine, _clock = await engine_for(make_engine, injector, ["a", "c"], HEDGED)
    for sim in ("a", "c"):
        injector.gate(sim)
    call_it = asyncio.ensure_future(call(engine, stream))
    await injector.waiting["a"].wait()
    await injector.waiting["c"].wait()
    call_it.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call_it
    assert_released(engine, ["a", "c"])


# -- go-aheads that no attempt used -------------------------------------------------------
async def test_a_probe_slot_is_handed_back_when_the_deadline_passes_before_the_attempt(
    make_engine: EngineFactory, injector: Injector, sims: dict[str, RunningSimulator],
) -> None:
    """b's breaker let a failover through (its probe slot), but the deadline passed before
    the attempt could start: the slot goes back."""
    clock = FakeClock(1000.0)
    engine = await make_engine(["a", "b"], FAST, clock=clock, sleep=instant,
                               on_failover=lambda _error, _next: clock.advance(60))
    half_open(engine, clock, ["b"])
    sims["a"].faults.add(Fault(kind="status", status=500))
    with pytest.raises(AllAttemptsFailed):
        await call(engine, False)
    assert not injector.started["b"].is_set()
    assert_released(engine, ["a", "b"])


async def test_a_probe_slot_is_handed_back_when_the_request_used_its_attempts(
    make_engine: EngineFactory, injector: Injector, sims: dict[str, RunningSimulator],
) -> None:
    policy = {**FAST, "retry": {"max_attempts_total": 1, "max_attempts_per_target": 1}}
    engine, _clock = await engine_for(make_engine, injector, ["a", "b"], policy)
    engine.state.breakers.breaker("a/model-a").reset()  # a takes the first attempt
    sims["a"].faults.add(Fault(kind="status", status=500))
    with pytest.raises(AllAttemptsFailed):
        await call(engine, False)
    assert not injector.started["b"].is_set()
    assert_released(engine, ["a", "b"])


@pytest.mark.parametrize("stream", STREAM)
async def test_hedge_race_that_never_ran_its_attempts_hands_back_both_slots(
    make_engine: EngineFactory, injector: Injector, monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    """The race admitted the hedge (taking c's probe slot) and was cancelled before either
    attempt's task took its first step, so neither attempt ever ran to release its slot."""
    async def cancelled_before_the_attempts_ran(
        primary: Any, hedge: Any, delay: float, admit_hedge: Callable[[], bool],
        *_: Any) -> Any:
        assert admit_hedge()
        raise asyncio.CancelledError()

    monkeypatch.setattr(executor, "race_with_hedge", cancelled_before_the_attempts_ran)
    engine, _clock = await engine_for(make_engine, injector, ["a", "c"], HEDGED)
    with pytest.raises(asyncio.CancelledError):
        await call(engine, stream)
    assert not injector.started["a"].is_set() and not injector.started["c"].is_set()
    assert_released(engine, ["a", "c"])
