"""Usage and cost when the provider's usage is missing or partial: estimated and flagged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.pricing._wire import fold_stream
from tests.pricing.test_cost_vectors import anthropic_stream, gemini_stream, openai_stream

from turnout.core.parts import TextPart, ThinkingPart, ToolCallPart
from turnout.core.request import ChatRequest, Message
from turnout.core.response import ChatResponse, Usage
from turnout.pricing import Price, bundled_prices, cost, lookup_price
from turnout.pricing.estimate import (
    attempt_cost,
    estimate_usage,
    reservation_cost,
    settle_usage,
)
from turnout.tokens import counter_for

HELLO = ChatRequest(model="m", messages=[Message("user", [TextPart("hello world")])])
"""9 prompt tokens at OpenAI: 3 reply priming + 3 framing + 1 for "user" + 2 for the text."""


def cut(wire: bytes, before: bytes) -> bytes:
    """The stream up to (not including) the first event containing `before`."""
    return wire[:wire.index(before)].rsplit(b"\n\n", 1)[0] + b"\n\n"


def price(section: str, model: str) -> Price:
    found = lookup_price(bundled_prices(), section, model)
    assert found is not None
    return found


def test_openai_stream_cut_before_its_usage_chunk() -> None:
    # The text arrived, the usage chunk never did: everything is estimated.
    response = fold_stream("openai_chat", cut(openai_stream(), b'"usage"'), complete=False)
    assert response.usage == Usage()
    counter = counter_for("openai_chat", "gpt-5")
    settled = settle_usage(HELLO, response, counter, complete=False)
    assert settled.estimated
    assert settled.usage == Usage(input_tokens=9, output_tokens=1)  # "Hi" is one token
    result = attempt_cost(HELLO, response, counter, price("openai", "gpt-5"), complete=False)
    # 9 x 1.25 + 1 x 10 per million
    assert result.estimated and result.total == Decimal("0.00002125")


def test_anthropic_stream_cut_before_message_delta_keeps_the_reported_prompt() -> None:
    response = fold_stream("anthropic_messages",
                           cut(anthropic_stream(), b"message_delta"), complete=False)
    # message_start reported the prompt (and cache figures) and a placeholder output of 1.
    assert (response.usage.input_tokens, response.usage.output_tokens) == (26_000, 1)
    counter = counter_for("anthropic_messages", "claude-sonnet-4-5")
    settled = settle_usage(HELLO, response, counter, complete=False)
    assert settled.estimated
    assert settled.usage == Usage(input_tokens=26_000, output_tokens=2,  # ceil(1 x 5/4)
                                  cached_tokens=20_000, cache_write_tokens=5_000)
    result = attempt_cost(HELLO, response, counter, price("anthropic", "claude-sonnet-4-5"),
                          complete=False)
    # 1,000 x 3 + 20,000 x 0.30 + 5,000 x 3.75 + 2 x 15 per million
    assert result.total == Decimal("0.003") + Decimal("0.006") + Decimal("0.01875") + \
        Decimal("0.00003")


def test_gemini_stream_cut_after_the_thoughts() -> None:
    wire = gemini_stream()
    response = fold_stream("gemini", wire[:wire.index(b"\n\n") + 2], complete=False)
    assert (response.usage.input_tokens, response.usage.reasoning_tokens) == (12_000, 1_500)
    counter = counter_for("gemini", "gemini-2.5-pro")
    settled = settle_usage(HELLO, response, counter, complete=False)
    # Reported figures are lower bounds and beat the small offline count of the thought.
    assert settled.usage == Usage(input_tokens=12_000, output_tokens=1_500,
                                  cached_tokens=8_000, reasoning_tokens=1_500)
    assert settled.estimated


def test_complete_reported_usage_is_used_as_it_is() -> None:
    response = fold_stream("openai_chat", openai_stream())
    settled = settle_usage(HELLO, response, counter_for("openai_chat", "gpt-5"), complete=True)
    assert not settled.estimated and settled.usage == response.usage
    assert settled.usage is not response.usage  # a copy: later folding cannot change it


def test_a_local_model_that_reports_nothing_is_estimated_at_zero_cost() -> None:
    response = ChatResponse(id="r", model="smollm2", parts=[TextPart("hello world")])
    counter = counter_for("openai_chat", "smollm2")  # family "other": o200k x 1.1
    settled = settle_usage(HELLO, response, counter, complete=True)
    assert settled.estimated
    assert settled.usage == Usage(input_tokens=10, output_tokens=3)  # ceil(9 x 1.1), ceil(2.2)
    result = attempt_cost(HELLO, response, counter, price("local", "smollm2"), complete=True)
    assert result.total == 0 and result.estimated


def test_complete_with_a_prompt_but_no_output_figure_estimates_the_output() -> None:
    response = ChatResponse(id="r", model="m", parts=[TextPart("hello world")],
                            usage=Usage(input_tokens=50))
    settled = settle_usage(HELLO, response, counter_for("openai_chat", "gpt-4o"), complete=True)
    assert settled.estimated and settled.usage == Usage(input_tokens=50, output_tokens=2)


def test_complete_with_no_output_at_all_is_not_estimated() -> None:
    response = ChatResponse(id="r", model="m", usage=Usage(input_tokens=50))
    settled = settle_usage(HELLO, response, counter_for("openai_chat", "gpt-4o"), complete=True)
    assert not settled.estimated and settled.usage == Usage(input_tokens=50)


def test_estimate_counts_tool_calls_and_thinking() -> None:
    response = ChatResponse(id="r", model="m", parts=[
        ThinkingPart("hello world"), ToolCallPart("c", "get", '{"a":1}')])
    counter = counter_for("openai_chat", "o3")
    usage = estimate_usage(HELLO, response, counter)
    assert usage.reasoning_tokens == 2
    assert usage.output_tokens == 2 + counter.text("get") + counter.text('{"a":1}')
    assert usage.input_tokens == 9


reported_usages = st.builds(Usage, *(st.integers(0, 10**6) for _ in range(5)))
texts = st.lists(st.text(max_size=80), max_size=4)


@settings(max_examples=60, deadline=None)
@given(reported_usages, texts, st.booleans())
@pytest.mark.parametrize("dialect", ["openai_chat", "anthropic_messages", "gemini"])
def test_settled_usage_never_undercuts_what_was_reported(
        dialect: str, reported: Usage, pieces: list[str], complete: bool) -> None:
    response = ChatResponse(id="r", model="m", parts=[TextPart(t) for t in pieces],
                            usage=reported)
    settled = settle_usage(HELLO, response, counter_for(dialect, "gpt-4o"), complete=complete)
    usage = settled.usage
    fields: Any = ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens")
    assert all(getattr(usage, f) >= getattr(reported, f) for f in fields)
    if settled.estimated:
        assert usage.input_tokens >= usage.cached_tokens + usage.cache_write_tokens
        assert usage.reasoning_tokens <= usage.output_tokens
        assert usage.input_tokens > 0
    else:
        assert usage == reported and complete


def test_a_cut_stream_is_flagged_even_when_every_figure_was_reported() -> None:
    response = fold_stream("openai_chat", openai_stream(), complete=True)
    settled = settle_usage(HELLO, response, counter_for("openai_chat", "gpt-5"), complete=False)
    assert settled.estimated  # the caller said the attempt did not end normally
    assert settled.usage.input_tokens == response.usage.input_tokens



def test_reservation_is_the_worst_case() -> None:
    counter = counter_for("openai_chat", "gpt-5")
    result = reservation_cost(HELLO, counter, price("openai", "gpt-5"), max_output_tokens=1000)
    # 9 prompt tokens x 1.25 + 1,000 output x 10 per million
    assert result.estimated and result.total == Decimal("0.00001125") + Decimal("0.01")
    claude = counter_for("anthropic_messages", "claude-haiku-4-5")
    held = reservation_cost(HELLO, claude, price("anthropic", "claude-haiku-4-5"),
                            max_output_tokens=100)
    # 12 estimated prompt tokens at the 5-minute write rate 1.25, 100 x 5 per million
    assert (held.cache_write, held.output) == (Decimal("0.000015"), Decimal("0.0005"))
    assert held.micro_usd() == 515


@settings(max_examples=60, deadline=None)
@given(reported_usages, texts, st.integers(0, 10**5))
def test_a_reservation_covers_any_settlement_within_its_limits(
        reported: Usage, pieces: list[str], max_output: int) -> None:
    counter = counter_for("anthropic_messages", "claude-sonnet-4-5")
    sonnet = price("anthropic", "claude-sonnet-4-5")
    prompt = counter.prompt(HELLO).tokens
    # Any real outcome of the call: its prompt split any way between plain input, cache
    # reads and cache writes, and at most max_output output tokens.
    cached = reported.cached_tokens % (prompt + 1)
    written = reported.cache_write_tokens % (prompt - cached + 1)
    outcome = Usage(input_tokens=prompt, cached_tokens=cached, cache_write_tokens=written,
                    output_tokens=reported.output_tokens % (max_output + 1))
    held = reservation_cost(HELLO, counter, sonnet, max_output_tokens=max_output)
    assert cost(outcome, sonnet).total <= held.total


@pytest.mark.parametrize(("section", "model"), [
    ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o-mini"), ("gemini", "gemini-2.5-pro")])
@pytest.mark.parametrize(("prompt", "output"), [(0, 0), (1, 1), (1234, 567), (250_000, 8192)])
def test_the_fast_reservation_equals_the_full_one(section: str, model: str, prompt: int,
                                                  output: int) -> None:
    from turnout.pricing.estimate import reservation_micro_usd

    rates = price(section, model)
    counter = counter_for("openai_chat", "gpt-4o-mini")
    full = reservation_cost(ChatRequest(model=model, messages=[]), counter, rates,
                            max_output_tokens=output, prompt_tokens=prompt)
    assert reservation_micro_usd(prompt, output, rates) == full.micro_usd()
