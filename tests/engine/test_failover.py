"""Chaos tests: faults injected into real simulators; the client still gets an answer."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.core.errors import (
    AllAttemptsFailed,
    InvalidRequest,
    NotFound,
    TurnoutError,
    Unprocessable,
)
from turnout.engine.context import CallContext
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import EngineFactory, answer_of, ask, call, record_sleep

FAST = {"timeouts": {"connect_s": 1, "ttft_s": 0.5, "idle_s": 0.5, "per_attempt_s": 2,
                     "total_s": 10}}
STREAM = [pytest.param(False, id="non-stream"), pytest.param(True, id="stream")]


def upstream_calls(sim: RunningSimulator) -> int:
    return sum(1 for r in sim.requests if not r.path.startswith("/_sim"))


FAILOVER_FAULTS: list[Any] = [
    pytest.param({"kind": "status", "status": 500}, id="500"),
    pytest.param({"kind": "status", "status": 503}, id="503"),
    pytest.param({"kind": "status", "status": 529}, id="529-overloaded"),
    pytest.param({"kind": "status", "status": 429, "headers": {"Retry-After": "1"}},
                 id="429-retry-after-1"),
    pytest.param({"kind": "status", "status": 429, "headers": {"Retry-After": "30"}},
                 id="429-retry-after-30"),
    pytest.param({"kind": "hang"}, id="hang"),
    pytest.param({"kind": "reset"}, id="connection-reset"),
    pytest.param({"kind": "malformed"}, id="malformed-json"),
    pytest.param({"kind": "slow_first_token", "seconds": 5}, id="slow-first-token"),
]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("fault", FAILOVER_FAULTS)
async def test_primary_failure_fails_over_to_the_next_target(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], fault: dict[str, Any],
    stream: bool,
) -> None:
    failovers: list[tuple[str, str]] = []
    engine = await make_engine(
        ["a", "b"], FAST, on_failover=lambda e, c: failovers.append((e.code, c.deployment.id)))
    sims["a"].faults.add(Fault(**fault, times=-1))
    response, served, ctx = await call(engine, stream)
    assert response.text() == answer_of("b")
    assert served == "b/model-b"
    assert [a.target for a in ctx.attempts][-1] == "b/model-b"
    assert ctx.attempts[-1].kind == "fallback"
    assert all(a.outcome == "error" for a in ctx.attempts[:-1])
    assert failovers and failovers[-1][1] == "b/model-b"


@pytest.mark.parametrize(
    "fault",
    [pytest.param({"kind": "cut_stream", "after_chunks": n}, id=f"cut-after-{n}")
     for n in (0, 1)]
    + [pytest.param({"kind": "error_event", "after_chunks": 1}, id="error-event-in-200"),
       pytest.param({"kind": "error_event", "after_chunks": 0, "status": 429},
                    id="rate-limit-event-first")],
)
async def test_stream_failure_before_content_is_invisible(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], fault: dict[str, Any]
) -> None:
    """Chunks 0 and 1 of the simulator's stream carry no content (role / start): a failure
    there must still fail over with nothing sent to the client."""
    engine = await make_engine(["a", "b"], FAST)
    sims["a"].faults.add(Fault(**fault, times=-1))
    response, served, _ = await call(engine, True)
    assert served == "b/model-b"
    assert response.text() == answer_of("b")


async def test_stream_cut_after_content_ends_with_an_error_not_a_silent_truncation(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    engine = await make_engine(["a", "b"], FAST)
    sims["a"].faults.add(Fault(kind="cut_stream", after_chunks=4, times=-1))
    with pytest.raises(TurnoutError) as caught:
        await call(engine, True)
    assert caught.value.code == "upstream_connection_error"


async def test_stream_continuation_never_duplicates_text(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """Opt-in continuation: the cut stream's partial text goes to the fallback as an
    assistant prefix; the client sees one coherent answer."""
    engine = await make_engine(["a", "b"], {**FAST, "stream_continuation": True})
    sims["a"].faults.add(Fault(kind="cut_stream", after_chunks=5, times=-1))
    response, _, ctx = await call(engine, True)
    text = response.text()
    assert [a.outcome for a in ctx.attempts] == ["ok", "ok"]
    prefix = text[: text.index("Hello from b")]
    assert prefix and answer_of("a").startswith(prefix)
    assert text.count("Hello from") == 2  # a's partial text, then b's answer, once each
    sent = sims["b"].requests[-1].body
    assert sent is not None and sent["messages"][-1] == {"role": "assistant",
                                                         "content": prefix}


async def test_stream_continuation_keeps_the_continuations_connection_open(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """The fallback streams its continuation over several network reads: closing the cut
    stream must not close the continuation's connection, which is still being read."""
    engine = await make_engine(["a", "b"], {**FAST, "stream_continuation": True})
    sims["a"].faults.add(Fault(kind="cut_stream", after_chunks=5, times=-1))
    sims["b"].faults.add(Fault(kind="slow_chunks", seconds=0.01))
    response, _, ctx = await call(engine, True)
    assert response.text().endswith(answer_of("b"))
    assert [a.outcome for a in ctx.attempts] == ["ok", "ok"]
    assert engine.state.health["b/model-b"].in_flight == 0


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(("status", "error"), [
    (400, InvalidRequest), (404, NotFound), (422, Unprocessable)])
async def test_caller_errors_are_never_retried_nor_sent_down_the_chain(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool,
    status: int, error: type[TurnoutError],
) -> None:
    engine = await make_engine(["a", "b"], FAST)
    sims["a"].faults.add(Fault(kind="status", status=status, times=-1))
    with pytest.raises(error):
        await call(engine, stream)
    assert upstream_calls(sims["a"]) == 1
    assert upstream_calls(sims["b"]) == 0


async def test_provider_key_rejected_fails_over_without_retry(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    """A 401 from a provider is about the gateway's own key for that deployment (clients
    never send provider keys): not worth a retry there, but another deployment may serve."""
    engine = await make_engine(["a", "b"], {**FAST, "fallback_on": [
        "server_error", "authentication"]})
    sims["a"].faults.add(Fault(kind="status", status=401, times=-1))
    _response, served, _ = await call(engine, False)
    assert served == "b/model-b"
    assert upstream_calls(sims["a"]) == 1


async def test_transient_error_is_retried_on_the_same_target_when_it_is_the_last(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float]
) -> None:
    engine = await make_engine(["a"], FAST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=503, times=1))
    response, _served, ctx = await call(engine, False)
    assert response.text() == answer_of("a")
    assert [a.kind for a in ctx.attempts] == ["first", "retry"]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1  # full jitter under base_delay_s


async def test_retry_after_is_honoured_on_the_last_target(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float]
) -> None:
    engine = await make_engine(["a"], FAST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "2"}))
    response, _, _ctx = await call(engine, False)
    assert response.text() == answer_of("a")
    assert sleeps == [2.0]


async def test_retry_after_beyond_the_deadline_gives_up_at_once(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], sleeps: list[float]
) -> None:
    engine = await make_engine(["a"], FAST, sleep=record_sleep(sleeps))
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "30"}))
    with pytest.raises(AllAttemptsFailed) as caught:
        await call(engine, False)
    assert sleeps == []  # 30 s would pass the 10 s deadline: no point waiting
    assert caught.value.status == 429 and caught.value.retry_after == 30.0


@pytest.mark.parametrize("stream", STREAM)
async def test_rate_limited_target_cools_down_for_retry_after(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """A 429 storm with Retry-After: 30 costs one extra attempt, not one per request."""
    engine = await make_engine(["a", "b"], FAST)
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "30"},
                               times=-1))
    for _ in range(20):
        _response, served, _ = await call(engine, stream)
        assert served == "b/model-b"
    assert upstream_calls(sims["a"]) == 1
    assert upstream_calls(sims["b"]) == 20


async def test_pre_call_check_skips_targets_too_small_for_the_prompt(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    engine = await make_engine(
        ["a", "b"], FAST,
        models={"a/model-a": {"context_window": 100}, "b/model-b": {"context_window": 100000}})
    long_prompt = "word " * 1000  # about 1,250 tokens by the estimate: over a's 100
    _response, served, _ctx = await call(engine, False, ask(long_prompt))
    assert served == "b/model-b"
    assert upstream_calls(sims["a"]) == 0


@pytest.mark.parametrize("stream", STREAM)
async def test_client_deadline_is_one_budget_across_attempts(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """Both targets hang; the client's own 0.3 s deadline bounds the whole request."""
    engine = await make_engine(["a", "b"], FAST)
    for name in ("a", "b"):
        sims[name].faults.add(Fault(kind="hang", times=-1))
    with pytest.raises(TurnoutError) as caught:
        await call(engine, stream, ctx=CallContext(timeout_s=0.3))
    assert caught.value.code == "upstream_timeout"
    assert len(caught.value.attempts) >= 1  # type: ignore[attr-defined]
