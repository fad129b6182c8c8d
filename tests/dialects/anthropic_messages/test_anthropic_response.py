"""Non-stream responses, both directions, checked against the SDK's `Message` type."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import Message as SDKMessage

from turnout.core.errors import MalformedResponse, Overloaded, TurnoutError
from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart
from turnout.core.response import ChatResponse, FinishReason, Usage
from turnout.dialects.anthropic_messages import DIALECT


def _response(**fields: Any) -> ChatResponse:
    base: dict[str, Any] = {
        "id": "chatcmpl-123", "model": "claude-x",
        "parts": [ThinkingPart("plan", "sig"), ThinkingPart("", None, "opaque"),
                  TextPart("Let me check."), TextPart(""),
                  ToolCallPart("toolu_9", "lookup", '{"key": "a", "n": 2}')],
        "finish_reason": "tool_calls",
        "usage": Usage(input_tokens=100, output_tokens=40, cached_tokens=30,
                       cache_write_tokens=20, reasoning_tokens=10)}
    base.update(fields)
    return ChatResponse(**base)


def test_encode_response_is_an_sdk_message() -> None:
    body = DIALECT.encode_response(_response())
    message = SDKMessage.model_validate(body)
    assert message.id == "msg_chatcmpl-123"
    assert message.model == "claude-x"
    assert message.stop_reason == "tool_use" and message.stop_sequence is None
    assert [b.type for b in message.content] == [
        "thinking", "redacted_thinking", "text", "tool_use"]
    assert body["content"][0] == {"type": "thinking", "thinking": "plan", "signature": "sig"}
    assert body["content"][1] == {"type": "redacted_thinking", "data": "opaque"}
    assert body["content"][3] == {"type": "tool_use", "id": "toolu_9", "name": "lookup",
                                  "input": {"key": "a", "n": 2}}
    # Anthropic's input_tokens excludes cache reads and writes: 100 - 30 - 20.
    assert body["usage"] == {"input_tokens": 50, "output_tokens": 40,
                             "cache_read_input_tokens": 30, "cache_creation_input_tokens": 20,
                             "output_tokens_details": {"thinking_tokens": 10}}


def test_msg_ids_are_kept() -> None:
    assert DIALECT.encode_response(_response(id="msg_01abc"))["id"] == "msg_01abc"


@pytest.mark.parametrize(("reason", "wire"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"), ("stop_sequence", "stop_sequence"), (None, "end_turn"),
])
def test_stop_reasons(reason: FinishReason | None, wire: str) -> None:
    body = DIALECT.encode_response(_response(finish_reason=reason, stop_sequence="##"))
    assert SDKMessage.model_validate(body).stop_reason == wire
    assert body["stop_sequence"] == ("##" if wire == "stop_sequence" else None)


def test_invalid_upstream_arguments_are_malformed() -> None:
    with pytest.raises(MalformedResponse) as info:
        DIALECT.encode_response(_response(parts=[ToolCallPart("t", "f", '{"a": ')]))
    assert info.value.origin == "upstream"


def test_parts_an_answer_never_has_are_left_out() -> None:
    body = DIALECT.encode_response(_response(parts=[ImagePart("https://x/y.png")]))
    assert body["content"] == []


def _wire_message(validate: bool = True, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s1"},
            {"type": "text", "text": "Hello", "citations": None},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": [1, 2]}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 5,
                  "output_tokens_details": {"thinking_tokens": 3}}}
    message.update(fields)
    if validate:
        SDKMessage.model_validate(message)  # a body the real API could send
    return message


def test_decode_response() -> None:
    response = DIALECT.decode_response(orjson.dumps(_wire_message()))
    assert (response.id, response.model) == ("msg_01", "claude-x")
    assert response.parts == [ThinkingPart("hmm", "s1"), TextPart("Hello"),
                              ToolCallPart("toolu_1", "f", '{"x":[1,2]}')]
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=117, output_tokens=7, cached_tokens=100,
                                   cache_write_tokens=5, reasoning_tokens=3)
    assert response.provider_details == {}


@pytest.mark.parametrize(("wire", "reason"), [
    ("end_turn", "stop"), ("max_tokens", "length"), ("stop_sequence", "stop_sequence"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
])
def test_decode_stop_reasons(wire: str, reason: FinishReason) -> None:
    stop = "END" if wire == "stop_sequence" else None
    response = DIALECT.decode_response(orjson.dumps(_wire_message(stop_reason=wire,
                                                                  stop_sequence=stop)))
    assert response.finish_reason == reason
    assert response.stop_sequence == stop


def test_server_tool_blocks_are_recorded_not_passed_as_content() -> None:
    body = _wire_message(content=[
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
         "input": {"query": "x"}},
        {"type": "text", "text": "Found."}])
    response = DIALECT.decode_response(orjson.dumps(body))
    assert response.parts == [TextPart("Found.")]
    assert response.provider_details == {"anthropic": {"skipped_blocks": ["server_tool_use"]}}


def test_round_trip() -> None:
    original = _response(id="msg_1", parts=[ThinkingPart("a", "s"), TextPart("b"),
                                            ToolCallPart("t", "f", '{"k":1}')])
    assert DIALECT.decode_response(orjson.dumps(DIALECT.encode_response(original))) == original


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"type": "completion"}',
    orjson.dumps({**_wire_message(), "content": None}),
    orjson.dumps({**_wire_message(), "id": 5}),
    orjson.dumps(_wire_message(False, content=[{"type": "text", "text": 1}])),
    orjson.dumps(_wire_message(False, content=[{"type": "tool_use", "id": "t", "name": "f",
                                                "input": "{}"}])),
])
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        DIALECT.decode_response(body)
    assert info.value.origin == "upstream"


def test_error_body_with_200_raises_the_mapped_error() -> None:
    body = orjson.dumps({"type": "error",
                         "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with pytest.raises(TurnoutError) as info:
        DIALECT.decode_response(body)
    assert type(info.value) is Overloaded
    assert info.value.origin == "upstream" and info.value.message == "Overloaded"
