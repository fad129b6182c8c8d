"""Streams both ways: Gemini SSE chunks -> canonical events, canonical events -> SSE chunks
(each validated with the SDK), and the round trip stream == non-stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _gemini_helpers import SIG_A, SIG_B, fold, sdk_response, sse_events, sse_payloads

from turnout.core.errors import (
    ConnectionFailed,
    ContentFiltered,
    MalformedResponse,
    Overloaded,
    RateLimited,
)
from turnout.core.events import (
    Finish,
    PartEnd,
    PartStart,
    ResponseStart,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UsageUpdate,
    response_to_events,
)
from turnout.core.parts import TextPart, ThinkingPart, ToolCallPart
from turnout.core.request import ChatRequest, Message
from turnout.core.response import ChatResponse, Usage
from turnout.dialects.base import SSEEvent
from turnout.dialects.gemini import DIALECT

REQUEST = ChatRequest("gemini-2.5-flash", [Message("user", [TextPart("hi")])], stream=True)


def chunk(parts: list[dict[str, Any]] | None = None, reason: str | None = None,
          usage: dict[str, Any] | None = None) -> SSEEvent:
    cand: dict[str, Any] = {"index": 0}
    if parts is not None:
        cand["content"] = {"role": "model", "parts": parts}
    if reason:
        cand["finishReason"] = reason
    payload: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.5-flash",
                               "responseId": "r1"}
    if usage:
        payload["usageMetadata"] = usage
    sdk_response(payload)
    return SSEEvent(orjson.dumps(payload))


def decode_all(events: list[SSEEvent]) -> list[StreamEvent]:
    decoder = DIALECT.stream_decoder()
    out: list[StreamEvent] = []
    for event in events:
        out += decoder.feed(event)
    return out + decoder.close()


def test_realistic_stream_events() -> None:
    events = decode_all([
        chunk([{"text": "Thinking a", "thought": True}]),
        chunk([{"text": "bout it", "thought": True}]),
        chunk([{"text": "The answer"}]),
        chunk([{"text": " is 42.", "thoughtSignature": SIG_A}]),
        chunk([{"functionCall": {"name": "log", "args": {"n": 42}}}]),
        chunk([{"text": ""}], "STOP", {"promptTokenCount": 5, "candidatesTokenCount": 7,
                                       "thoughtsTokenCount": 3, "totalTokenCount": 15}),
    ])
    assert events == [
        ResponseStart("r1", "gemini-2.5-flash"),
        PartStart(0, ThinkingPart("")), ThinkingDelta(0, "Thinking a"),
        ThinkingDelta(0, "bout it"),
        PartEnd(0), PartStart(1, TextPart("")), TextDelta(1, "The answer"),
        # A signature on a text chunk: the open text ends, a carrier holds it, text goes on.
        PartEnd(1), PartStart(2, ThinkingPart("")), ThinkingDelta(2, "", SIG_A), PartEnd(2),
        PartStart(3, TextPart("")), TextDelta(3, " is 42."),
        PartEnd(3), PartStart(4, ToolCallPart("call_r1_0", "log", "")),
        ToolArgsDelta(4, '{"n":42}'), PartEnd(4),
        UsageUpdate(Usage(input_tokens=5, output_tokens=10, reasoning_tokens=3)),
        Finish("tool_calls"),
    ]
    assert fold(events).text() == "The answer is 42."


def test_cut_stream_raises_connection_failed() -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed(chunk([{"text": "partial"}]))
    with pytest.raises(ConnectionFailed) as info:
        decoder.close()
    assert info.value.origin == "upstream"


def test_error_chunk_raises_the_mapped_error() -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed(chunk([{"text": "so far"}]))
    with pytest.raises(Overloaded) as info:
        decoder.feed(SSEEvent(b'{"error": {"code": 503, "message": "The model is overloaded. '
                              b'Please try again later.", "status": "UNAVAILABLE"}}'))
    assert info.value.origin == "upstream"
    with pytest.raises(RateLimited) as limited:
        DIALECT.stream_decoder().feed(SSEEvent(orjson.dumps({"error": {
            "code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                         "retryDelay": "12s"}]}})))
    assert limited.value.retry_after == 12.0


def test_blocked_prompt_chunk() -> None:
    with pytest.raises(ContentFiltered):
        DIALECT.stream_decoder().feed(SSEEvent(
            b'{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}'))


@pytest.mark.parametrize("data", [b"{nope", b"[1]", b'{"candidates": [{"content": 1}]}'])
def test_malformed_chunks(data: bytes) -> None:
    with pytest.raises(MalformedResponse):
        DIALECT.stream_decoder().feed(SSEEvent(data))


def test_blank_events_and_chunks_after_finish_are_ignored() -> None:
    decoder = DIALECT.stream_decoder()
    assert decoder.feed(SSEEvent(b"  ")) == []
    decoder.feed(chunk([{"text": "x"}], "MAX_TOKENS"))
    assert decoder.feed(chunk([{"text": "late"}])) == []
    assert decoder.close() == []


CASES = {
    "text": ChatResponse("id-1", "gemini-2.5-flash", [TextPart("Hello there.")], "stop",
                         usage=Usage(3, 2)),
    "thinking_and_calls": ChatResponse(
        "id-2", "gemini-2.5-pro",
        [ThinkingPart("Let me see.", SIG_A), ThinkingPart("", SIG_B),
         ToolCallPart("call_a", "weather", '{"city": "Paris"}'),
         ToolCallPart("call_b", "weather", '{"city": "Rome"}')],
        "tool_calls", usage=Usage(100, 40, cached_tokens=60, reasoning_tokens=30)),
    "carriers": ChatResponse(
        "id-3", "m", [ThinkingPart("", SIG_A), TextPart("one"), TextPart("two"),
                      ThinkingPart("", SIG_B), ThinkingPart("", SIG_A)], "length"),
    "thought_after_carrier": ChatResponse(
        "id-4", "m", [ThinkingPart("", SIG_A), ThinkingPart("more thoughts"),
                      TextPart("done")], "content_filter"),
    "empty": ChatResponse("id-5", "m", [], "stop"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_stream_encoder_to_decoder_equals_non_stream(name: str) -> None:
    response = CASES[name]
    encoder = DIALECT.stream_encoder(REQUEST)
    data = b"".join(encoder.encode(e) for e in response_to_events(response)) + encoder.done()
    payloads = sse_payloads(data)
    for payload in payloads:
        sdk_response(payload)
    assert payloads[-1]["candidates"][0]["finishReason"]
    assert all("finishReason" not in p["candidates"][0] for p in payloads[:-1])
    streamed = fold(decode_all(sse_events(data)))
    direct = DIALECT.decode_response(orjson.dumps(DIALECT.encode_response(response)))
    assert streamed == direct
    assert streamed.text() == response.text()
    assert streamed.usage == response.usage


def test_encoder_chunks_in_detail() -> None:
    encoder = DIALECT.stream_encoder(REQUEST)
    events: list[StreamEvent] = [
        ResponseStart("r", "gemini-x"),
        PartStart(0, ThinkingPart("")), ThinkingDelta(0, "a"), ThinkingDelta(0, "b"),
        ThinkingDelta(0, "", SIG_A), PartEnd(0),
        PartStart(1, ThinkingPart("")), ThinkingDelta(1, "", SIG_B), PartEnd(1),
        PartStart(2, ToolCallPart("call_1", "f", "")), ToolArgsDelta(2, '{"x":'),
        ToolArgsDelta(2, " 1}"), PartEnd(2),
        UsageUpdate(Usage(4, 6, reasoning_tokens=2)), Finish("tool_calls"),
    ]
    chunks = [sse_payloads(encoder.encode(e)) for e in events]
    parts = [c[0]["candidates"][0].get("content", {}).get("parts") for c in chunks if c]
    assert parts == [
        [{"text": "a", "thought": True}], [{"text": "b", "thought": True}],
        [{"text": "", "thought": True, "thoughtSignature": SIG_A}],
        [{"functionCall": {"name": "f", "args": {"x": 1}, "id": "call_1"},
          "thoughtSignature": SIG_B}],
        [{"text": ""}],
    ]
    last = chunks[-1][0]
    assert last == {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                    "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 4,
                                      "totalTokenCount": 10, "thoughtsTokenCount": 2},
                    "modelVersion": "gemini-x", "responseId": "r"}
    assert encoder.done() == b""


def test_stream_encode_error() -> None:
    encoder = DIALECT.stream_encoder(REQUEST)
    data = encoder.encode_error(RateLimited("slow down", retry_after=2.5))
    assert data.startswith(b"data: ") and data.endswith(b"\r\n\r\n")
    assert sse_payloads(data) == [{"error": {
        "code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                     "retryDelay": "3s"}]}}]
    with pytest.raises(RateLimited) as info:
        DIALECT.stream_decoder().feed(sse_events(data)[0])
    assert info.value.retry_after == 3.0


def test_synthesised_call_ids_are_unique_per_response() -> None:
    first = fold(decode_all([chunk([{"functionCall": {"name": "f"}}], "STOP")]))
    other = chunk([{"functionCall": {"name": "f"}}], "STOP")
    payload = orjson.loads(other.data)
    payload["responseId"] = "r2"
    second = fold(decode_all([SSEEvent(orjson.dumps(payload))]))
    assert first.tool_calls()[0].id == "call_r1_0"
    assert second.tool_calls()[0].id == "call_r2_0"
    no_id = orjson.loads(other.data)
    del no_id["responseId"]
    third = fold(decode_all([SSEEvent(orjson.dumps(no_id))]))
    fourth = fold(decode_all([SSEEvent(orjson.dumps(no_id))]))
    assert third.tool_calls()[0].id != fourth.tool_calls()[0].id
