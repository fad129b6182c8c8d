"""Hand-checked cost vectors per provider, from wire usage through each dialect's decoder,
non-stream and stream alike.

Each provider counts differently on the wire: OpenAI's `prompt_tokens` includes
`cached_tokens` and `completion_tokens` includes `reasoning_tokens`; Anthropic's
`input_tokens` excludes cache reads and writes; Gemini's `promptTokenCount` includes
`cachedContentTokenCount` while `thoughtsTokenCount` is outside `candidatesTokenCount`.
The dialects must turn all three into the same canonical usage, so one `cost` fits all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tests.pricing._wire import decode_body, fold_stream, sse

from turnout.core.response import ChatResponse, Usage
from turnout.pricing import Price, bundled_prices, lookup_price
from turnout.pricing.cost import Cost, cost


def price(section: str, model: str) -> Price:
    found = lookup_price(bundled_prices(), section, model)
    assert found is not None
    return found


# --- OpenAI: gpt-5 (1.25 in, 0.125 cached, 10 out) ------------------------------------------

OPENAI_USAGE = {"prompt_tokens": 10_000, "completion_tokens": 3_000, "total_tokens": 13_000,
                "prompt_tokens_details": {"cached_tokens": 4_000, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 2_000}}
OPENAI_CANONICAL = Usage(input_tokens=10_000, output_tokens=3_000, cached_tokens=4_000,
                         reasoning_tokens=2_000)
# 6,000 uncached x 1.25 + 4,000 cached x 0.125 + 1,000 visible x 10 + 2,000 reasoning x 10
OPENAI_COST = Cost(input=Decimal("0.0075"), cached_input=Decimal("0.0005"),
                   output=Decimal("0.01"), reasoning=Decimal("0.02"))


def openai_body() -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-5",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                         "finish_reason": "stop"}],
            "usage": OPENAI_USAGE}


def openai_stream(*, with_usage: bool = True) -> bytes:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-5"}
    events: list[tuple[str | None, Any]] = [
        (None, {**head, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                            "content": "Hi"}}]}),
        (None, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ]
    if with_usage:
        events.append((None, {**head, "choices": [], "usage": OPENAI_USAGE}))
    return sse([*events, (None, "[DONE]")])


# --- Anthropic: claude-sonnet-4-5 (3 in, 3.75 write, 0.30 read, 15 out) ------------------

ANTHROPIC_START_USAGE = {"input_tokens": 1_000, "cache_creation_input_tokens": 5_000,
                         "cache_read_input_tokens": 20_000, "output_tokens": 1,
                         "cache_creation": {"ephemeral_5m_input_tokens": 5_000,
                                            "ephemeral_1h_input_tokens": 0}}
ANTHROPIC_CANONICAL = Usage(input_tokens=26_000, output_tokens=800, cached_tokens=20_000,
                            cache_write_tokens=5_000)
# 1,000 x 3 + 20,000 x 0.30 + 5,000 x 3.75 + 800 x 15
ANTHROPIC_COST = Cost(input=Decimal("0.003"), cached_input=Decimal("0.006"),
                      cache_write=Decimal("0.01875"), output=Decimal("0.012"))


def anthropic_body() -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {**ANTHROPIC_START_USAGE, "output_tokens": 800}}


def anthropic_stream() -> bytes:
    message = {**anthropic_body(), "content": [], "stop_reason": None,
               "usage": ANTHROPIC_START_USAGE}
    return sse([
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        # The final delta carries cumulative output; input figures are not repeated.
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 800}}),
        ("message_stop", {"type": "message_stop"}),
    ])


# --- Gemini: gemini-2.5-pro (1.25 in, 0.125 cached, 10 out; above 200k 2.50/0.25/15) ------

GEMINI_USAGE = {"promptTokenCount": 12_000, "cachedContentTokenCount": 8_000,
                "candidatesTokenCount": 500, "thoughtsTokenCount": 1_500,
                "totalTokenCount": 14_000}
GEMINI_CANONICAL = Usage(input_tokens=12_000, output_tokens=2_000, cached_tokens=8_000,
                         reasoning_tokens=1_500)
# 4,000 uncached x 1.25 + 8,000 cached x 0.125 + 500 visible x 10 + 1,500 thoughts x 10
GEMINI_COST = Cost(input=Decimal("0.005"), cached_input=Decimal("0.001"),
                   output=Decimal("0.005"), reasoning=Decimal("0.015"))


def gemini_chunk(parts: list[dict[str, Any]], usage: dict[str, Any],
                 finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage,
            "modelVersion": "gemini-2.5-pro", "responseId": "r1"}


def gemini_body() -> dict[str, Any]:
    return gemini_chunk([{"text": "Let me think.", "thought": True}, {"text": "Hi"}],
                        GEMINI_USAGE, "STOP")


def gemini_stream() -> bytes:
    early = {"promptTokenCount": 12_000, "cachedContentTokenCount": 8_000,
             "thoughtsTokenCount": 1_500, "totalTokenCount": 13_500}
    return sse([
        (None, gemini_chunk([{"text": "Let me think.", "thought": True}], early)),
        (None, gemini_chunk([{"text": "Hi"}], GEMINI_USAGE, "STOP")),
    ])


CASES = {
    "openai": ("openai_chat", openai_body, openai_stream, ("openai", "gpt-5"),
               OPENAI_CANONICAL, OPENAI_COST, Decimal("0.038")),
    "anthropic": ("anthropic_messages", anthropic_body, anthropic_stream,
                  ("anthropic", "claude-sonnet-4-5"), ANTHROPIC_CANONICAL, ANTHROPIC_COST,
                  Decimal("0.03975")),
    "gemini": ("gemini", gemini_body, gemini_stream, ("gemini", "gemini-2.5-pro"),
               GEMINI_CANONICAL, GEMINI_COST, Decimal("0.026")),
}


def _decoded(case: str, mode: str) -> ChatResponse:
    dialect, body, stream = CASES[case][:3]
    if mode == "stream":
        return fold_stream(dialect, stream())  # type: ignore[operator]
    return decode_body(dialect, body())  # type: ignore[operator]


@pytest.mark.parametrize("mode", ["non_stream", "stream"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_wire_usage_decodes_to_canonical_usage(case: str, mode: str) -> None:
    assert _decoded(case, mode).usage == CASES[case][4]


@pytest.mark.parametrize("mode", ["non_stream", "stream"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_checked_cost(case: str, mode: str) -> None:
    section, model = CASES[case][3]  # type: ignore[misc]
    result = cost(_decoded(case, mode).usage, price(section, model))
    assert result == CASES[case][5]
    assert result.total == CASES[case][6]
    assert not result.estimated


def test_gemini_long_prompt_bills_the_whole_request_at_the_long_rates() -> None:
    usage = decode_body("gemini", gemini_chunk([{"text": "Hi"}], {
        "promptTokenCount": 250_000, "cachedContentTokenCount": 100_000,
        "candidatesTokenCount": 1_000, "totalTokenCount": 251_000}, "STOP")).usage
    result = cost(usage, price("gemini", "gemini-2.5-pro"))
    # 150,000 x 2.50 + 100,000 x 0.25 + 1,000 x 15
    assert result.total == Decimal("0.375") + Decimal("0.025") + Decimal("0.015")


def test_anthropic_cache_write_only_request() -> None:
    # First call of a cached prefix: everything written, nothing read.
    usage = decode_body("anthropic_messages", {**anthropic_body(), "usage": {
        "input_tokens": 50, "cache_creation_input_tokens": 10_000,
        "cache_read_input_tokens": 0, "output_tokens": 100}}).usage
    result = cost(usage, price("anthropic", "claude-haiku-4-5"))
    # 50 x 1 + 10,000 x 1.25 + 100 x 5
    assert result.total == Decimal("0.00005") + Decimal("0.0125") + Decimal("0.0005")


def test_openai_reasoning_bills_at_the_output_rate() -> None:
    usage = decode_body("openai_chat", {**openai_body(), "usage": {
        "prompt_tokens": 100, "completion_tokens": 1_000,
        "completion_tokens_details": {"reasoning_tokens": 900}}}).usage
    result = cost(usage, price("openai", "o4-mini"))
    assert (result.output, result.reasoning) == (Decimal("0.00044"), Decimal("0.00396"))
    assert result.total == Decimal("0.00011") + Decimal("0.0044")


def test_micro_usd_rounds_up() -> None:
    assert OPENAI_COST.micro_usd() == 38_000
    assert Cost(input=Decimal("0.0000001")).micro_usd() == 1
    assert Cost().micro_usd() == 0
