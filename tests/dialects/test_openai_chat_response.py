"""Complete responses: `chat.completion` objects for clients and from providers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion

from turnout.core.errors import MalformedResponse, UnsupportedFeature
from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart
from turnout.core.response import ChatResponse, FinishReason, Usage
from turnout.dialects.openai_chat import DIALECT, OpenAIChatDialect


def tool_response() -> ChatResponse:
    return ChatResponse(
        id="chatcmpl-abc", model="gpt-4o-2024-08-06", created=1_700_000_000,
        parts=[TextPart("Let me check."),
               ToolCallPart("call_1", "weather", '{"city":"Oslo"}'),
               ToolCallPart("call_2", "weather", '{"city":"Rome"}')],
        finish_reason="tool_calls",
        usage=Usage(input_tokens=120, output_tokens=30, cached_tokens=100, reasoning_tokens=0),
    )


def test_encode_is_exactly_the_published_shape() -> None:
    encoded = DIALECT.encode_response(tool_response())
    # Written from the API reference's example response, not from our output.
    assert encoded == {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "refusal": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": "weather", "arguments": '{"city":"Rome"}'}},
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }],
        "usage": {
            "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    completion = ChatCompletion.model_validate(encoded)
    assert completion.choices[0].message.tool_calls is not None
    assert completion.usage is not None and completion.usage.total_tokens == 150


def test_text_only_thinking_and_cache_writes() -> None:
    response = ChatResponse(
        id="r", model="m", created=5,
        parts=[ThinkingPart("Two plus two.", signature="sig"), TextPart("4")],
        finish_reason="stop",
        usage=Usage(10, 8, cache_write_tokens=4, reasoning_tokens=5),
    )
    encoded = DIALECT.encode_response(response)
    message = encoded["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "4", "refusal": None,
                       "reasoning_content": "Two plus two."}
    assert encoded["usage"]["prompt_tokens_details"] == {"cached_tokens": 0,
                                                         "cache_write_tokens": 4}
    assert encoded["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}
    validated = ChatCompletion.model_validate(encoded)
    assert validated.choices[0].message.content == "4"


@pytest.mark.parametrize(("reason", "wire"), [
    ("stop", "stop"), ("stop_sequence", "stop"), ("length", "length"),
    ("tool_calls", "tool_calls"), ("content_filter", "content_filter"), (None, "stop"),
])
def test_finish_reasons(reason: FinishReason | None, wire: str) -> None:
    response = ChatResponse("r", "m", [TextPart("x")], finish_reason=reason, created=1)
    encoded = DIALECT.encode_response(response)
    assert encoded["choices"][0]["finish_reason"] == wire
    ChatCompletion.model_validate(encoded)


def test_empty_answer_has_null_content_and_clock_fills_created() -> None:
    dialect = OpenAIChatDialect(clock=lambda: 1234.9)
    encoded = dialect.encode_response(ChatResponse("r", "m", [], finish_reason="length"))
    assert encoded["created"] == 1234
    assert encoded["choices"][0]["message"]["content"] is None
    ChatCompletion.model_validate(encoded)


def test_image_output_cannot_be_encoded() -> None:
    with pytest.raises(UnsupportedFeature):
        DIALECT.encode_response(ChatResponse("r", "m", [ImagePart("https://x/y.png")]))


def test_encode_then_decode_round_trip() -> None:
    original = tool_response()
    assert DIALECT.decode_response(orjson.dumps(DIALECT.encode_response(original))) == original


# --- decoding provider answers ---------------------------------------------------------------

def completion(message: dict[str, Any], finish: Any = "stop", **extra: Any) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant"} | message, "logprobs": None,
              "finish_reason": finish}
    return orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 99,
                         "model": "gpt-4o", "choices": [choice]} | extra)


def test_decode_openai_answer_with_usage_details() -> None:
    body = completion({"content": "Hello!", "refusal": None, "annotations": []}, usage={
        "prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}},
        system_fingerprint="fp_1", service_tier="default")
    response = DIALECT.decode_response(body)
    assert response == ChatResponse(
        id="chatcmpl-1", model="gpt-4o", created=99, parts=[TextPart("Hello!")],
        finish_reason="stop",
        usage=Usage(input_tokens=19, output_tokens=10, cached_tokens=3, reasoning_tokens=2))


def test_decode_refusal_reasoning_and_missing_usage() -> None:
    refused = DIALECT.decode_response(completion({"content": None,
                                                  "refusal": "I can't help with that."}))
    assert refused.parts == [TextPart("I can't help with that.")]
    assert refused.finish_reason == "content_filter"
    assert refused.usage == Usage()
    for key in ("reasoning_content", "reasoning"):
        thought = DIALECT.decode_response(completion({"content": "4", key: "2+2"}))
        assert thought.parts == [ThinkingPart("2+2"), TextPart("4")]
    both = DIALECT.decode_response(completion({"content": "4", "reasoning_content": "",
                                               "reasoning": "2+2"}))
    assert both.parts == [ThinkingPart("2+2"), TextPart("4")]
    empty = DIALECT.decode_response(completion({"content": "4", "reasoning_content": ""}))
    assert empty.parts == [TextPart("4")]


def test_decode_vllm_stop_reason_and_unknown_finish() -> None:
    body = orjson.loads(completion({"content": "a"}))
    body["choices"][0]["stop_reason"] = "###"
    response = DIALECT.decode_response(orjson.dumps(body))
    assert (response.finish_reason, response.stop_sequence) == ("stop_sequence", "###")
    assert DIALECT.decode_response(completion({"content": "a"}, "eos")).finish_reason == "stop"
    assert DIALECT.decode_response(
        completion({"content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            "function_call")).finish_reason == "tool_calls"


@pytest.mark.parametrize("body", [
    b"not json",
    b"[]",
    b'{"id": "x"}',
    b'{"choices": []}',
    b'{"choices": [{"index": 0}]}',
    b'{"choices": "many"}',
    completion({"content": 5}),
    completion({"content": "a", "tool_calls": {"id": "c"}}),
    completion({"content": "a", "tool_calls": [{"id": "c", "function": {"name": 1}}]}),
    completion({"content": "a"}, usage={"prompt_tokens": "many"}),
    completion({"content": "a"}, usage=[1, 2]),
    completion({"content": "a"}, 7),
    completion({"content": "a"}, id=5),
])
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        DIALECT.decode_response(body)
    assert info.value.origin == "upstream" and info.value.retryable
