"""Which deadline bounds what: `ttft_s` a stream's first content, `per_attempt_s` a whole
non-stream call (whose headers only come with the finished answer)."""

from __future__ import annotations

from turnout.core.errors import UpstreamTimeout
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import EngineFactory, answer_of, call

# The gaps between limits and simulated delays are wide so that a loaded machine cannot
# change which side of a limit a call lands on.
TIMEOUTS = {"timeouts": {"connect_s": 5, "ttft_s": 0.2, "idle_s": 5, "per_attempt_s": 5,
                         "total_s": 20}}


async def test_a_non_stream_answer_slower_than_ttft_is_not_cut(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    engine = await make_engine(["a", "b"], TIMEOUTS)
    sims["a"].faults.add(Fault(kind="slow_first_token", seconds=1.0))
    response, served, ctx = await call(engine, stream=False)
    assert served == "a/model-a"
    assert response.text() == answer_of("a")
    assert [a.outcome for a in ctx.attempts] == ["ok"]


async def test_a_stream_slower_than_ttft_fails_over(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    engine = await make_engine(["a", "b"], TIMEOUTS)
    sims["a"].faults.add(Fault(kind="slow_first_token", seconds=10.0))
    response, served, ctx = await call(engine, stream=True)
    assert served == "b/model-b"
    assert response.text() == answer_of("b")
    first = ctx.attempts[0]
    assert isinstance(first.error, UpstreamTimeout)
    assert "before the first chunk" in first.error.message


async def test_per_attempt_bounds_the_whole_non_stream_call(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    policy = {"timeouts": {"ttft_s": 0.1, "per_attempt_s": 0.3, "total_s": 20}}
    engine = await make_engine(["a", "b"], policy)
    sims["a"].faults.add(Fault(kind="hang"))
    response, served, ctx = await call(engine, stream=False)
    assert served == "b/model-b"
    assert response.text() == answer_of("b")
    first = ctx.attempts[0]
    assert isinstance(first.error, UpstreamTimeout)
    assert "did not answer within 0.3s" in first.error.message
