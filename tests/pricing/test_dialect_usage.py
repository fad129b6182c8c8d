"""Every dialect carries the simulators' usage to the same canonical usage, and so the same
cost, whether the answer came whole or as a stream (what a simulator sends is exactly what
that dialect's encoder writes, so this is the loop a provider call goes through)."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.pricing._wire import fold_stream

from turnout.core.parts import TextPart
from turnout.core.request import ChatRequest, Message, ThinkingConfig
from turnout.core.response import ChatResponse, Usage
from turnout.dialects.registry import DIALECT_MODULES, get_dialect
from turnout.pricing import Price, cost
from turnout.sim.responder import respond
from turnout.sim.stream import stream_events

DIALECTS = sorted(DIALECT_MODULES)
PRICE = Price.model_validate({"input": "3", "cached_input": "0.3", "cache_write": "3.75",
                              "output": "15", "reasoning": "20"})
"""Every rate distinct, so any token landing in the wrong bucket changes the cost."""


def sim_answer(dialect: str) -> tuple[ChatRequest, ChatResponse]:
    request = ChatRequest(model="m", stream=True, include_usage=True,
                          thinking=ThinkingConfig(budget_tokens=2048),
                          messages=[Message("user", [TextPart("what is the price of tea")])])
    return request, respond(request, sim_name=dialect)


def through_body(dialect: str, response: ChatResponse) -> Usage:
    codec = get_dialect(dialect)
    wire = orjson.dumps(codec.encode_response(copy.deepcopy(response)))
    return codec.decode_response(wire).usage


def through_stream(dialect: str, request: ChatRequest, response: ChatResponse) -> Usage:
    encoder = get_dialect(dialect).stream_encoder(request)
    wire = b"".join(encoder.encode(e) for e in stream_events(
        copy.deepcopy(response), chunk_words=2, split_arguments=dialect != "gemini"))
    return fold_stream(dialect, wire + encoder.done()).usage


@pytest.mark.parametrize("dialect", DIALECTS)
def test_simulator_usage_survives_both_paths(dialect: str) -> None:
    request, response = sim_answer(dialect)
    assert response.usage.reasoning_tokens > 0  # the simulator thought, so this is tested
    assert through_body(dialect, response) == response.usage
    assert through_stream(dialect, request, response) == response.usage


usages = st.builds(
    lambda uncached, cached, written, visible, reasoning: Usage(
        input_tokens=uncached + cached + written, output_tokens=visible + reasoning,
        cached_tokens=cached, cache_write_tokens=written, reasoning_tokens=reasoning),
    *(st.integers(0, 2_000_000) for _ in range(5)))


@settings(max_examples=40, deadline=None)
@given(usages)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_any_consistent_usage_costs_the_same_after_the_wire(dialect: str, usage: Usage) -> None:
    if dialect == "gemini":
        # Gemini has no cache writes (implicit caching is free to write): nothing to carry.
        usage.input_tokens -= usage.cache_write_tokens
        usage.cache_write_tokens = 0
    request, response = sim_answer(dialect)
    response.usage = usage
    expected = cost(usage, PRICE)
    assert cost(through_body(dialect, response), PRICE) == expected
    assert cost(through_stream(dialect, request, response), PRICE) == expected
