"""The pipeline seam: every hook, in order, stream and non-stream, against real simulators."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from tests.engine.conftest import EngineFactory, answer_of, ask, call

from turnout.core.errors import ClientClosed, PermissionDenied, RateLimited, TurnoutError
from turnout.core.events import TextDelta
from turnout.core.parts import TextPart
from turnout.core.request import Message
from turnout.engine.context import CallContext
from turnout.engine.outcome import ChatOutcome
from turnout.engine.pipeline import Batch, Call, CallEnd, Pipeline, Stage
from turnout.engine.plan import Candidate
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

FAST = {"retry": {"base_delay_s": 0, "max_delay_s": 0}}


class Recorder(Stage):
    """Records every hook it sees, tagged with its own name."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.ends: list[CallEnd] = []

    async def authenticate(self, ctx: CallContext) -> None:
        self.log.append(f"{self.name}.authenticate")

    async def on_request(self, call: Call) -> ChatOutcome | None:
        self.log.append(f"{self.name}.on_request")
        return None

    async def on_plan(self, call: Call) -> None:
        self.log.append(f"{self.name}.on_plan")

    async def on_attempt(self, call: Call, candidate: Candidate) -> Candidate:
        self.log.append(f"{self.name}.on_attempt:{candidate.deployment.id}")
        return candidate

    async def on_response(self, call: Call, outcome: ChatOutcome) -> ChatOutcome:
        self.log.append(f"{self.name}.on_response")
        return outcome

    async def on_batch(self, call: Call, batch: Batch) -> Batch:
        if f"{self.name}.on_batch" not in self.log:
            self.log.append(f"{self.name}.on_batch")
        return batch

    async def on_end(self, call: Call, end: CallEnd) -> None:
        self.log.append(f"{self.name}.on_end")
        self.ends.append(end)


@pytest.mark.parametrize("stream", [False, True])
async def test_hooks_run_in_order_inward_then_outward(make_engine: EngineFactory,
                                                      stream: bool) -> None:
    log: list[str] = []
    outer, inner = Recorder("outer", log), Recorder("inner", log)
    engine = await make_engine(["a"], stages=[outer, inner])
    response, deployment, _ = await call(engine, stream)
    assert response.text() == answer_of("a")
    way_out = "on_batch" if stream else "on_response"
    assert log == [
        "outer.authenticate", "inner.authenticate",
        "outer.on_request", "inner.on_request",
        "outer.on_plan", "inner.on_plan",
        "outer.on_attempt:a/model-a", "inner.on_attempt:a/model-a",
        f"inner.{way_out}", f"outer.{way_out}",
        "inner.on_end", "outer.on_end",
    ]
    end = outer.ends[0]
    assert end.error is None and end.deployment is not None
    assert end.deployment.id == deployment
    assert end.usage == response.usage and end.usage.output_tokens > 0


def test_a_hook_no_stage_overrides_is_not_indexed() -> None:
    class EndOnly(Stage):
        async def on_end(self, call: Call, end: CallEnd) -> None:
            pass

    stage = EndOnly()
    pipeline = Pipeline([stage])
    assert pipeline.end == (stage,)
    assert not (pipeline.authenticators or pipeline.request or pipeline.plan
                or pipeline.attempt or pipeline.response or pipeline.batch)
    assert not Pipeline()


class Reject(Stage):
    name = "reject"

    def __init__(self) -> None:
        self.ends: list[CallEnd] = []

    async def on_request(self, call: Call) -> ChatOutcome | None:
        raise RateLimited("too many requests for this key", retry_after=7)

    async def on_end(self, call: Call, end: CallEnd) -> None:
        self.ends.append(end)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stage_rejects_before_any_upstream_request(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool) -> None:
    stage = Reject()
    engine = await make_engine(["a"], stages=[stage])
    with pytest.raises(RateLimited) as caught:
        await call(engine, stream)
    assert caught.value.retry_after == 7
    assert sims["a"].requests == []
    assert [e.error for e in stage.ends] == [caught.value]
    assert stage.ends[0].deployment is None


class Rewrite(Stage):
    async def on_request(self, call: Call) -> ChatOutcome | None:
        call.request.messages = [Message("user", [TextPart("[redacted]")])]
        return None


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stage_rewrites_the_request(make_engine: EngineFactory, stream: bool) -> None:
    engine = await make_engine(["a"], stages=[Rewrite()])
    response, _, _ = await call(engine, stream, ask("my card is 4111 1111 1111 1111"))
    assert response.text() == answer_of("a", "[redacted]")


class OnlyProvider(Stage):
    def __init__(self, provider: str) -> None:
        self.provider = provider

    async def on_plan(self, call: Call) -> None:
        call.plan = [c for c in call.plan if c.deployment.provider == self.provider]
        if not call.plan:
            raise PermissionDenied("no permitted target")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stage_narrows_the_candidates(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool) -> None:
    engine = await make_engine(["a", "b"], stages=[OnlyProvider("b")])
    response, deployment, _ = await call(engine, stream)
    assert deployment == "b/model-b" and response.text() == answer_of("b")
    assert sims["a"].requests == []
    with pytest.raises(PermissionDenied):
        await call(await make_engine(["a"], stages=[OnlyProvider("b")]), stream)


class Cache(Stage):
    """Answers every request from memory with the deployment that first answered it."""

    def __init__(self) -> None:
        self.saved: ChatOutcome | None = None

    async def on_request(self, call: Call) -> ChatOutcome | None:
        return self.saved

    async def on_response(self, call: Call, outcome: ChatOutcome) -> ChatOutcome:
        self.saved = outcome
        return outcome


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stage_answers_directly(make_engine: EngineFactory,
                                        sims: dict[str, RunningSimulator], stream: bool) -> None:
    cache = Cache()
    engine = await make_engine(["a"], stages=[cache])
    first, _, _ = await call(engine, False)
    assert len(sims["a"].requests) == 1
    again, deployment, ctx = await call(engine, stream)
    assert again.text() == first.text() and again.usage == first.usage
    assert deployment == "a/model-a" and ctx.attempts == []
    assert len(sims["a"].requests) == 1


class OwnKey(Stage):
    """Bring-your-own-key: each attempt goes out with the caller's own provider key."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def on_attempt(self, call: Call, candidate: Candidate) -> Candidate:
        deployment = candidate.deployment
        target = dataclasses.replace(deployment.target, api_key=self.key)
        return dataclasses.replace(candidate,
                                   deployment=dataclasses.replace(deployment, target=target))


@pytest.mark.parametrize("stream", [False, True])
async def test_each_attempt_passes_the_attempt_stage(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool) -> None:
    log: list[str] = []
    engine = await make_engine(["a", "b"], FAST, stages=[Recorder("r", log), OwnKey("own")])
    sims["a"].faults.add(Fault(kind="status", status=500))
    response, deployment, _ = await call(engine, stream)
    assert deployment == "b/model-b" and response.text() == answer_of("b")
    assert [e for e in log if "on_attempt" in e] == ["r.on_attempt:a/model-a",
                                                     "r.on_attempt:b/model-b"]
    for sim in ("a", "b"):
        assert sims[sim].requests[-1].headers["authorization"] == "Bearer own"


class Shout(Stage):
    async def on_batch(self, call: Call, batch: Batch) -> Batch:
        return [TextDelta(e.index, e.text.upper()) if isinstance(e, TextDelta) else e
                for e in batch]


async def test_a_stage_rewrites_stream_batches(make_engine: EngineFactory) -> None:
    engine = await make_engine(["a"], stages=[Shout()])
    response, _, _ = await call(engine, True)
    assert response.text() == answer_of("a").upper()


@pytest.mark.parametrize("stream", [False, True])
async def test_the_end_hears_an_upstream_failure(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool) -> None:
    log: list[str] = []
    stage = Recorder("r", log)
    engine = await make_engine(["a"], {"fallback_on": [], **FAST}, stages=[stage])
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    with pytest.raises(TurnoutError) as caught:
        await call(engine, stream)
    assert [e.error for e in stage.ends] == [caught.value]


async def test_the_end_hears_a_client_leaving_mid_stream(make_engine: EngineFactory) -> None:
    stage = Recorder("r", [])
    engine = await make_engine(["a"], stages=[stage])
    outcome = await engine.stream(ask("one two three four five six"), CallContext())
    async for _ in outcome.batches:
        break
    assert stage.ends == []
    await outcome.batches.aclose()
    assert len(stage.ends) == 1 and isinstance(stage.ends[0].error, ClientClosed)


async def test_the_end_runs_for_a_stream_nobody_read(make_engine: EngineFactory) -> None:
    # A client gone before the first write: the gateway closes the batches unread.
    stage = Recorder("r", [])
    engine = await make_engine(["a"], stages=[stage])
    outcome = await engine.stream(ask(), CallContext())
    await outcome.batches.aclose()
    assert len(stage.ends) == 1 and isinstance(stage.ends[0].error, ClientClosed)
    assert engine.state.health["a/model-a"].in_flight == 0


async def test_the_end_hears_a_cancelled_call(make_engine: EngineFactory,
                                              sims: dict[str, RunningSimulator]) -> None:
    stage = Recorder("r", [])
    engine = await make_engine(["a"], stages=[stage])
    sims["a"].faults.add(Fault(kind="hang"))
    task = asyncio.create_task(engine.chat(ask(), CallContext()))
    while not sims["a"].requests:  # noqa: ASYNC110 - a list, no event to wait on
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(stage.ends) == 1 and isinstance(stage.ends[0].error, ClientClosed)


class Broken(Stage):
    name = "broken"

    async def on_end(self, call: Call, end: CallEnd) -> None:
        raise RuntimeError("ledger down")


async def test_a_failing_end_hook_is_logged_and_the_others_still_run(
        make_engine: EngineFactory, caplog: pytest.LogCaptureFixture) -> None:
    after = Recorder("after", [])
    engine = await make_engine(["a"], stages=[after, Broken()])
    with caplog.at_level(logging.ERROR, logger="turnout.pipeline"):
        response, _, _ = await call(engine, False)
    assert response.text() == answer_of("a")
    assert len(after.ends) == 1
    assert "broken" in caplog.text and "ledger down" in caplog.text


async def test_a_swap_rebuilds_the_pipeline_and_keeps_the_engines_own_stages(
        make_engine: EngineFactory) -> None:
    stage = Recorder("r", [])
    engine = await make_engine(["a"], stages=[stage])
    await engine.swap(engine.runtime)
    assert stage in engine.pipeline.stages
    await call(engine, False)
    assert len(stage.ends) == 1



async def test_a_stream_nobody_read_releases_its_deployment_without_stages(
        make_engine: EngineFactory) -> None:
    engine = await make_engine(["a"])
    assert not engine.pipeline
    outcome = await engine.stream(ask(), CallContext())
    assert engine.state.health["a/model-a"].in_flight == 1
    await outcome.batches.aclose()
    assert engine.state.health["a/model-a"].in_flight == 0
