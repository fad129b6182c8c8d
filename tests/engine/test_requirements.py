"""A request's needs against its targets: context windows (declared, or reported by an
upstream), capabilities, and output limits. Against real simulators."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.core.errors import AllAttemptsFailed, ContextWindowExceeded, UnsupportedFeature
from turnout.core.parts import ImagePart, TextPart, ToolResultPart
from turnout.core.request import (
    ChatRequest,
    Message,
    ResponseFormat,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
)
from turnout.dialects.base import UpstreamTarget
from turnout.engine.context import CallContext
from turnout.engine.plan import Candidate
from turnout.engine.requirements import Requirements, fit_output, output_cap, request_needs
from turnout.providers.types import (
    JSON_SCHEMA,
    REASONING,
    TOOLS,
    VISION,
    Deployment,
    ModelInfo,
    Route,
)
from turnout.resilience.clock import FakeClock
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import EngineFactory, answer_of, ask, call
from .test_failover import FAST, STREAM, upstream_calls

OVERFLOW = {"kind": "status", "status": 400, "error": "context_length_exceeded"}
LONG = "word " * 1000
"""About 1,250 tokens by the gateway's estimate."""
TOOL = ToolDefinition("get_weather", "Weather in a city",
                      {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]})
IMAGE = ImagePart("data:image/png;base64,iVBORw0KGgo=")


def windows(**sizes: int | None) -> dict[str, Any]:
    """`models:` overrides declaring each named simulator's context window."""
    return {f"{name}/model-{name}": {"context_window": size} for name, size in sizes.items()}


def upstream_bodies(sim: RunningSimulator) -> list[dict[str, Any]]:
    return [r.body for r in sim.requests if not r.path.startswith("/_sim") and r.body]


# --- context windows ------------------------------------------------------------------------

@pytest.mark.parametrize("stream", STREAM)
async def test_prompt_too_large_for_every_target_is_the_callers_400(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    engine = await make_engine(["a", "b"], FAST, models=windows(a=100, b=1000))
    with pytest.raises(ContextWindowExceeded) as caught:
        await call(engine, stream, ask(LONG))
    error = caught.value
    assert error.status == 400 and error.code == "context_length_exceeded"
    assert "about 1,252 tokens" in error.message and "the largest is 1,000" in error.message
    assert "route 'r'" in error.message
    assert upstream_calls(sims["a"]) == upstream_calls(sims["b"]) == 0


@pytest.mark.parametrize("stream", STREAM)
async def test_too_small_or_ejected_is_unavailability_not_the_callers_error(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """`b` could hold the prompt but its breaker is open; `a` cannot hold it. The request
    is fine, the route is down: the availability error, not a 400 blaming the prompt."""
    policy = {**FAST, "breaker": {"consecutive_failures": 1, "base_ejection_s": 60}}
    engine = await make_engine(["b", "a"], policy, models=windows(a=100, b=100000),
                               clock=FakeClock(1000.0))
    sims["b"].faults.add(Fault(kind="status", status=500))
    _response, served, _ = await call(engine, stream)  # b fails and is ejected; a answers
    assert served == "a/model-a"
    with pytest.raises(AllAttemptsFailed) as caught:
        await call(engine, stream, ask(LONG))
    assert caught.value.status == 502 and caught.value.attempts == []
    assert "ejected" in caught.value.message and "1 more cannot take" in caught.value.message


@pytest.mark.parametrize("stream", STREAM)
async def test_upstream_overflow_tries_the_targets_that_might_hold_the_prompt(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """`a` and `c` declare the same window (two deployments of one model, say) and `a`
    reports an overflow anyway: `c` is still worth a try, `b` (declared too small for the
    estimate) is not. No `context_window` in `fallback_on` is needed."""
    engine = await make_engine(["a", "b", "c"], FAST,
                               models=windows(a=200000, b=100, c=200000))
    sims["a"].faults.add(Fault(**OVERFLOW, times=-1))
    response, served, ctx = await call(engine, stream, ask(LONG))
    assert served == "c/model-c" and response.text() == answer_of("c", LONG)
    assert [(a.target, a.kind) for a in ctx.attempts] == [
        ("a/model-a", "first"), ("c/model-c", "fallback")]
    assert upstream_calls(sims["b"]) == 0


@pytest.mark.parametrize("stream", STREAM)
async def test_overflowed_deployment_is_not_tried_again_on_a_fallback_route(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    engine = await make_engine(["a"], FAST, fallbacks=["more"], extra_routes={"more": {
        "targets": [{"provider": "a", "model": "model-a"},
                    {"provider": "b", "model": "model-b", "priority": 1}]}})
    sims["a"].faults.add(Fault(**OVERFLOW, times=-1))
    _response, served, ctx = await call(engine, stream)
    assert served == "b/model-b"
    assert [a.target for a in ctx.attempts] == ["a/model-a", "b/model-b"]
    assert upstream_calls(sims["a"]) == 1


@pytest.mark.parametrize("stream", STREAM)
async def test_overflow_everywhere_is_the_callers_400(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    engine = await make_engine(["a", "b"], FAST)  # windows unknown: both worth a try
    for name in ("a", "b"):
        sims[name].faults.add(Fault(**OVERFLOW, times=-1))
    ctx = CallContext()
    with pytest.raises(ContextWindowExceeded) as caught:
        await call(engine, stream, ctx=ctx)
    assert caught.value.origin == "upstream" and caught.value.provider == "b/model-b"
    assert [a.target for a in ctx.attempts] == ["a/model-a", "b/model-b"]


# --- capabilities ---------------------------------------------------------------------------

NEEDS: list[Any] = [
    pytest.param("tools", {"tools": [TOOL], "tool_choice": ToolChoice("required")},
                 id="tools-required"),
    pytest.param("tools", {"tools": [TOOL]}, id="tools-auto"),
    pytest.param("vision", {"messages": [Message("user", [TextPart("what is it?"), IMAGE])]},
                 id="image"),
    pytest.param("json_schema", {"response_format": ResponseFormat(
        "json_schema", name="answer", schema={"type": "object", "properties": {}})},
        id="json-schema"),
    pytest.param("reasoning", {"thinking": ThinkingConfig(enabled=True, effort="low")},
                 id="thinking"),
]


def needing(fields: dict[str, Any]) -> ChatRequest:
    request = ask()
    for key, value in fields.items():
        setattr(request, key, value)
    return request


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(("capability", "fields"), NEEDS)
async def test_target_lacking_a_needed_capability_is_skipped(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool,
    capability: str, fields: dict[str, Any],
) -> None:
    """`a` declares it cannot; `b` is unknown to the catalog, so it may."""
    engine = await make_engine(["a", "b"], FAST, models={"a/model-a": {capability: False}})
    _response, served, ctx = await call(engine, stream, needing(fields))
    assert served == "b/model-b"
    assert [a.kind for a in ctx.attempts] == ["first"]
    assert upstream_calls(sims["a"]) == 0


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(("capability", "fields"), NEEDS)
async def test_capability_no_target_has_is_the_callers_400(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool,
    capability: str, fields: dict[str, Any],
) -> None:
    engine = await make_engine(["a", "b"], FAST, models={
        "a/model-a": {capability: False}, "b/model-b": {capability: False}})
    with pytest.raises(UnsupportedFeature) as caught:
        await call(engine, stream, needing(fields))
    error = caught.value
    assert error.status == 400 and error.code == "unsupported_feature"
    assert "Route 'r' has no target that supports" in error.message
    assert "a/model-a, b/model-b" in error.message
    assert upstream_calls(sims["a"]) == upstream_calls(sims["b"]) == 0


async def test_each_target_lacking_something_else_names_every_shortfall(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    engine = await make_engine(["a", "b"], FAST, models={
        "a/model-a": {"tools": False}, "b/model-b": {"vision": False}})
    request = needing({"tools": [TOOL], "messages": [Message("user", [IMAGE])]})
    with pytest.raises(UnsupportedFeature, match=r"a/model-a lacks tools; b/model-b lacks "
                                                 r"image input"):
        await call(engine, False, request)


@pytest.mark.parametrize("stream", STREAM)
async def test_unknown_capabilities_and_unused_ones_never_skip_a_target(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """`a` is a model the catalog does not know: tools, images, a schema and thinking all
    go to it. `b` declares none of them, which does not matter for a request using none
    (tools offered with `tool_choice: none`, thinking disabled)."""
    engine = await make_engine(["a"], FAST)
    everything = {
        "tools": [TOOL], "tool_choice": ToolChoice("required"),
        "messages": [Message("user", [TextPart("ping"), IMAGE])],
        "response_format": ResponseFormat("json_schema", name="a", schema={"type": "object"}),
        "thinking": ThinkingConfig(enabled=True)}
    _response, served, _ = await call(engine, stream, needing(everything))
    assert served == "a/model-a"
    declared = {name: False for name in ("tools", "vision", "json_schema", "reasoning")}
    engine = await make_engine(["b"], FAST, models={"b/model-b": declared})
    unused = needing({"tools": [TOOL], "tool_choice": ToolChoice("none"),
                      "thinking": ThinkingConfig(enabled=False)})
    _response, served, _ = await call(engine, stream, unused)
    assert served == "b/model-b"


# --- output limits --------------------------------------------------------------------------

@pytest.mark.parametrize("stream", STREAM)
async def test_max_tokens_is_capped_per_target_and_the_request_kept(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """`a` may write at most 3 tokens: it is sent 3 and the call notes it. When `a` fails,
    `b` (no declared limit) gets the 1,000 the client asked for, and nothing is noted."""
    engine = await make_engine(["a", "b"], FAST, models={"a/model-a": {"max_output_tokens": 3}})
    request = ask(max_tokens=1000)
    response, served, ctx = await call(engine, stream, request)
    assert served == "a/model-a" and response.finish_reason == "length"
    assert response.text() == "Hello from a"  # the simulator counts words as tokens
    assert ctx.max_tokens_capped == 3
    assert upstream_bodies(sims["a"])[-1]["max_tokens"] == 3
    assert request.max_tokens == 1000

    sims["a"].faults.add(Fault(kind="status", status=500))
    _response, served, ctx = await call(engine, stream, request)
    assert served == "b/model-b" and ctx.max_tokens_capped is None
    assert upstream_bodies(sims["a"])[-1]["max_tokens"] == 3
    assert upstream_bodies(sims["b"])[-1]["max_tokens"] == 1000


@pytest.mark.parametrize("stream", STREAM)
async def test_max_tokens_within_the_limit_or_absent_is_left_alone(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    engine = await make_engine(["a"], FAST, models={"a/model-a": {"max_output_tokens": 50}})
    for asked in (50, None):
        _response, _served, ctx = await call(engine, stream, ask(max_tokens=asked))
        assert ctx.max_tokens_capped is None
        assert upstream_bodies(sims["a"])[-1].get("max_tokens") == asked


# --- the checks themselves ------------------------------------------------------------------

def deployment(name: str, **info: Any) -> Deployment:
    return Deployment(id=name, provider=name, dialect="openai_chat",
                      target=UpstreamTarget(base_url="http://x", model=name),
                      info=ModelInfo(**info))


def plan_of(*deployments: Deployment) -> list[Candidate]:
    route = Route("r", deployments)
    return [Candidate(d, route, 0) for d in deployments]


def test_only_needs_some_target_lacks_are_looked_for() -> None:
    request = needing({"tools": [TOOL], "messages": [Message("user", [IMAGE])],
                       "thinking": ThinkingConfig()})
    assert request_needs(request, TOOLS | VISION | JSON_SCHEMA | REASONING) == (
        TOOLS | VISION | REASONING)
    assert request_needs(request, JSON_SCHEMA) == 0
    assert request_needs(request, 0) == 0
    returned = needing({"messages": [
        Message("user", [TextPart("look")]),
        Message("tool", [ToolResultPart("call_1", [IMAGE], name="camera")])]})
    assert request_needs(returned, VISION) == VISION  # an image a tool returned


def test_no_window_and_no_lacking_target_costs_no_estimate() -> None:
    needs = Requirements(ask(LONG), plan_of(deployment("a"), deployment("b", tools=True)))
    assert needs.tokens == 0 and needs.needs == 0
    assert needs.fits(deployment("a"))


def test_a_reported_overflow_marks_only_that_deployment() -> None:
    a, b = deployment("a", context_window=10**6), deployment("b", context_window=10**6)
    needs = Requirements(ask(), plan_of(a, b))
    needs.overflowed(a)
    assert not needs.fits(a) and needs.fits(b)


def test_fit_output_copies_only_when_capping() -> None:
    request = ask(max_tokens=500)
    small, large = deployment("s", max_output_tokens=100), deployment("l")
    assert output_cap(request, small) == 100 and output_cap(request, large) is None
    assert fit_output(request, large) is request
    capped = fit_output(request, small)
    assert capped.max_tokens == 100 and request.max_tokens == 500
    assert capped.messages is request.messages
