"""Non-stream responses both ways: upstream bodies -> canonical, canonical -> client JSON
(validated with the SDK's `GenerateContentResponse`, which rejects unknown fields)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _gemini_helpers import SIG_A, SIG_B, sdk_response

from turnout.core.errors import ContentFiltered, MalformedResponse, RateLimited
from turnout.core.parts import TextPart, ThinkingPart, ToolCallPart
from turnout.core.response import ChatResponse, Usage
from turnout.dialects.gemini import DIALECT


def decode(payload: Any) -> ChatResponse:
    return DIALECT.decode_response(orjson.dumps(payload))


def candidate(parts: list[dict[str, Any]], reason: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": reason, "index": 0}],
            "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}


def test_realistic_response_with_thoughts_calls_and_usage() -> None:
    body = {
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "**Planning**\nI need the weather.", "thought": True},
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}},
                 "thoughtSignature": SIG_A},
                {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
            ]},
            "finishReason": "STOP", "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT",
                               "probability": "NEGLIGIBLE"}],
        }],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30,
                          "thoughtsTokenCount": 50, "cachedContentTokenCount": 100,
                          "totalTokenCount": 200,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "Xy9kaPbB",
    }
    sdk_response(body)  # the sample itself is a valid Gemini response
    response = decode(body)
    assert response.id == "Xy9kaPbB" and response.model == "gemini-2.5-flash"
    assert response.parts == [
        ThinkingPart("**Planning**\nI need the weather."),
        ThinkingPart("", SIG_A),
        ToolCallPart("call_Xy9kaPbB_0", "weather", '{"city":"Paris"}'),
        ToolCallPart("call_Xy9kaPbB_1", "weather", '{"city":"Rome"}'),
    ]
    # STOP with function calls is a tool-call finish.
    assert response.finish_reason == "tool_calls"
    # Input includes cached tokens; output = candidates + thoughts; reasoning = thoughts.
    assert response.usage == Usage(input_tokens=120, output_tokens=80, cached_tokens=100,
                                   reasoning_tokens=50)
    assert response.created == 0


def test_issued_ids_are_marked_and_text_parts_join() -> None:
    response = decode(candidate([
        {"text": "Hello"}, {"text": ", world"},
        {"functionCall": {"id": "abc-1", "name": "f"}},
        {"text": "", "thoughtSignature": SIG_B}]))
    assert response.parts == [TextPart("Hello, world"), ToolCallPart("gemini_abc-1", "f", "{}"),
                              ThinkingPart("", SIG_B)]


def test_snake_case_upstream_fields_are_read() -> None:
    response = decode({"candidates": [{"content": {"parts": [{
        "function_call": {"name": "f", "args": {"x_y": 1}}, "thought_signature": SIG_A}]},
        "finish_reason": "STOP"}], "usage_metadata": {"prompt_token_count": 3}})
    assert response.parts[0] == ThinkingPart("", SIG_A)
    assert isinstance(response.parts[1], ToolCallPart)
    assert response.parts[1].arguments == '{"x_y":1}'
    assert response.usage.input_tokens == 3


@pytest.mark.parametrize(("reason", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", "error"),
    ("SOMETHING_NEW", "stop"),
])
def test_finish_reasons(reason: str, expected: str) -> None:
    assert decode(candidate([{"text": "x"}], reason)).finish_reason == expected


def test_blocked_prompt_is_content_filtered() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.5-flash", "responseId": "r"}
    sdk_response(body)
    with pytest.raises(ContentFiltered) as info:
        decode(body)
    assert info.value.origin == "upstream" and "SAFETY" in info.value.message


def test_candidate_without_content() -> None:
    response = decode({"candidates": [{"finishReason": "SAFETY", "index": 0}]})
    assert response.parts == [] and response.finish_reason == "content_filter"


def test_error_object_in_a_200_body_is_mapped() -> None:
    with pytest.raises(RateLimited):
        decode({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b"{}", b'{"candidates": "x"}', b'{"candidates": [3]}',
    b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", '
    b'"data": "AA"}}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"text": 5}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", '
    b'"partialArgs": []}}]}}]}',
])
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        DIALECT.decode_response(body)
    assert info.value.origin == "upstream"


RESPONSE = ChatResponse(
    id="resp-9", model="gemini-2.5-pro",
    parts=[ThinkingPart("I should call it.", SIG_A), TextPart("Calling."),
           ThinkingPart("", SIG_B), ToolCallPart("call_1", "f", '{"a": 1}')],
    finish_reason="tool_calls",
    usage=Usage(input_tokens=10, output_tokens=25, cached_tokens=4, reasoning_tokens=5))


def test_encode_response_shape() -> None:
    payload = DIALECT.encode_response(RESPONSE)
    parsed = sdk_response(payload)
    assert payload == {
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "I should call it.", "thought": True, "thoughtSignature": SIG_A},
                {"text": "Calling."},
                {"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_1"},
                 "thoughtSignature": SIG_B}]},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 20,
                          "totalTokenCount": 35, "cachedContentTokenCount": 4,
                          "thoughtsTokenCount": 5},
        "modelVersion": "gemini-2.5-pro", "responseId": "resp-9",
    }
    assert parsed.text == "Calling."
    assert parsed.function_calls is not None and parsed.function_calls[0].args == {"a": 1}


@pytest.mark.parametrize(("reason", "wire"), [
    ("stop", "STOP"), ("stop_sequence", "STOP"), ("length", "MAX_TOKENS"),
    ("content_filter", "SAFETY"), ("error", "OTHER"), (None, "STOP"),
])
def test_encoded_finish_reasons(reason: Any, wire: str) -> None:
    payload = DIALECT.encode_response(ChatResponse("r", "m", [TextPart("x")], reason))
    sdk_response(payload)
    assert payload["candidates"][0]["finishReason"] == wire


def test_encode_then_decode_keeps_everything_but_marks_ids() -> None:
    back = DIALECT.decode_response(orjson.dumps(DIALECT.encode_response(RESPONSE)))
    assert back.parts[:3] == RESPONSE.parts[:3]
    assert back.parts[3] == ToolCallPart("gemini_call_1", "f", '{"a":1}')
    assert (back.id, back.model, back.finish_reason, back.usage) == (
        RESPONSE.id, RESPONSE.model, RESPONSE.finish_reason, RESPONSE.usage)


def test_empty_response_encodes_without_content() -> None:
    payload = DIALECT.encode_response(ChatResponse("r", "m", [], "content_filter"))
    sdk_response(payload)
    assert payload["candidates"] == [{"finishReason": "SAFETY", "index": 0}]
