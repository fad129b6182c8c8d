"""Streaming both ways, checked against the SDK's event types and its own accumulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import orjson
import pydantic
import pytest
from anthropic.types import Message as SDKMessage
from anthropic.types import RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse

from turnout.core.errors import ConnectionFailed, MalformedResponse, Overloaded, RateLimited
from turnout.core.events import (
    Finish,
    PartEnd,
    PartStart,
    ResponseStart,
    StreamAccumulator,
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
from turnout.dialects.anthropic_messages import DIALECT
from turnout.dialects.base import SSEEvent

EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
REQUEST = ChatRequest(model="alias", messages=[Message("user", [TextPart("hi")])], stream=True)


def parse_sse(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """(event name, decoded data) for every frame, checking the framing strictly."""
    assert data.endswith(b"\n\n"), data[-40:]
    frames = []
    for raw in data.decode().split("\n\n")[:-1]:
        name, payload = None, []
        for line in raw.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data", line
                payload.append(value)
        frames.append((name, orjson.loads("\n".join(payload))))
    return frames


def _response() -> ChatResponse:
    return ChatResponse(
        id="msg_abc", model="claude-x",
        parts=[ThinkingPart("Let me think.", "c2lnbmF0dXJl"), TextPart("The answer"),
               ToolCallPart("toolu_1", "lookup", '{"q": "tides", "days": 3}'),
               ThinkingPart("", None, "redacted-bytes")],
        finish_reason="tool_calls",
        usage=Usage(input_tokens=60, output_tokens=25, cached_tokens=40, cache_write_tokens=5,
                    reasoning_tokens=4))


def _encode(events: list[StreamEvent]) -> bytes:
    encoder = DIALECT.stream_encoder(REQUEST)
    return b"".join(encoder.encode(e) for e in events) + encoder.done()


def _validated(data: bytes) -> list[dict[str, Any]]:
    """Every frame's data, each validated by the SDK's own event types."""
    payloads = []
    for name, payload in parse_sse(data):
        assert name == payload["type"]
        if name == "ping":
            assert payload == {"type": "ping"}
        elif name == "error":
            ErrorResponse.model_validate(payload)
        else:
            EVENT.validate_python(payload)
        payloads.append(payload)
    return payloads


def _decode(data: bytes) -> list[StreamEvent]:
    decoder = DIALECT.stream_decoder()
    events: list[StreamEvent] = []
    for name, payload in parse_sse(data):
        events += decoder.feed(SSEEvent(orjson.dumps(payload), name))
    return events + decoder.close()


def _fold(events: list[StreamEvent]) -> ChatResponse:
    accumulator = StreamAccumulator()
    for event in events:
        accumulator.add(event)
    return accumulator.result()


def test_encoder_event_sequence() -> None:
    payloads = _validated(_encode(response_to_events(_response())))
    types = [p["type"] for p in payloads]
    assert types[:2] == ["message_start", "ping"]
    assert types[-2:] == ["message_delta", "message_stop"]
    starts = [p for p in payloads if p["type"] == "content_block_start"]
    assert [p["index"] for p in starts] == [0, 1, 2, 3]
    assert [p["content_block"]["type"] for p in starts] == [
        "thinking", "text", "tool_use", "redacted_thinking"]
    # Blocks are strictly sequential: each stops before the next starts.
    open_index = None
    for p in payloads:
        if p["type"] == "content_block_start":
            assert open_index is None
            open_index = p["index"]
        elif p["type"] in ("content_block_delta", "content_block_stop"):
            assert p["index"] == open_index
            if p["type"] == "content_block_stop":
                open_index = None
    signature = [p for p in payloads if p.get("delta", {}).get("type") == "signature_delta"]
    assert len(signature) == 1 and signature[0]["index"] == 0
    delta = payloads[-2]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {"input_tokens": 15, "output_tokens": 25,
                              "cache_read_input_tokens": 40, "cache_creation_input_tokens": 5,
                              "output_tokens_details": {"thinking_tokens": 4}}


def _sdk_final_message(sdk_client: Callable[..., anthropic.Anthropic],
                       data: bytes) -> SDKMessage:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    client = sdk_client(handler)
    with client.messages.stream(model="alias", max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message()


def test_sdk_accumulates_the_stream_into_the_non_stream_message(
    sdk_client: Callable[..., anthropic.Anthropic],
) -> None:
    response = _response()
    final = _sdk_final_message(sdk_client, _encode(response_to_events(response)))
    expected = SDKMessage.model_validate(DIALECT.encode_response(response))
    assert final.model_dump() == expected.model_dump()


def test_encoder_decoder_accumulator_round_trip() -> None:
    response = _response()
    assert _fold(_decode(_encode(response_to_events(response)))) == response


def test_stop_sequence_round_trip() -> None:
    response = ChatResponse(id="msg_1", model="m", parts=[TextPart("a")],
                            finish_reason="stop_sequence", stop_sequence="###",
                            usage=Usage(3, 1))
    payloads = _validated(_encode(response_to_events(response)))
    assert payloads[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "###"}
    assert _fold(_decode(_encode(response_to_events(response)))) == response


def test_interleaved_parts_are_serialised_and_late_usage_is_kept(
    sdk_client: Callable[..., anthropic.Anthropic],
) -> None:
    # OpenAI-style: parallel tool calls stream side by side; usage follows the finish.
    events: list[StreamEvent] = [
        ResponseStart("chatcmpl-9", "gpt-x"),
        PartStart(0, ToolCallPart("call_a", "f", "")),
        PartStart(1, ToolCallPart("call_b", "g", '{"y"')),
        ToolArgsDelta(1, ": 2}"),
        ToolArgsDelta(0, '{"x": '),
        PartEnd(1),
        ToolArgsDelta(0, "1}"),
        PartEnd(0),
        Finish("tool_calls"),
        UsageUpdate(Usage(input_tokens=11, output_tokens=6)),
    ]
    data = _encode(events)
    payloads = _validated(data)
    assert payloads[0]["message"]["id"] == "msg_chatcmpl-9"
    order = [(p["type"], p.get("index")) for p in payloads if "index" in p]
    assert order == [("content_block_start", 0), ("content_block_delta", 0),
                     ("content_block_delta", 0), ("content_block_stop", 0),
                     ("content_block_start", 1), ("content_block_delta", 1),
                     ("content_block_delta", 1), ("content_block_stop", 1)]
    final = _sdk_final_message(sdk_client, data)
    assert [(b.id, b.input) for b in final.content if b.type == "tool_use"] == [
        ("call_a", {"x": 1}), ("call_b", {"y": 2})]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 6)
    assert final.stop_reason == "tool_use"


def test_usage_known_at_start_goes_into_message_start() -> None:
    events: list[StreamEvent] = [
        ResponseStart("msg_1", "m"), UsageUpdate(Usage(input_tokens=30, cached_tokens=10)),
        PartStart(0, TextPart("")), TextDelta(0, "hi"), PartEnd(0),
        UsageUpdate(Usage(output_tokens=2)), Finish("stop")]
    payloads = _validated(_encode(events))
    assert payloads[0]["message"]["usage"]["input_tokens"] == 20
    assert payloads[0]["message"]["usage"]["cache_read_input_tokens"] == 10
    assert payloads[-2]["usage"]["input_tokens"] == 20
    assert payloads[-2]["usage"]["output_tokens"] == 2


def test_signature_pieces_become_one_signature_delta_before_stop() -> None:
    events: list[StreamEvent] = [
        ResponseStart("msg_1", "m"), PartStart(0, ThinkingPart()),
        ThinkingDelta(0, "a"), ThinkingDelta(0, "", "sig-"), ThinkingDelta(0, "b", "part2"),
        PartEnd(0), Finish("stop")]
    payloads = _validated(_encode(events))
    deltas = [p["delta"] for p in payloads if p["type"] == "content_block_delta"]
    assert deltas == [{"type": "thinking_delta", "thinking": "a"},
                      {"type": "thinking_delta", "thinking": "b"},
                      {"type": "signature_delta", "signature": "sig-part2"}]
    assert payloads[payloads.index({"type": "content_block_stop", "index": 0}) - 1][
        "delta"]["type"] == "signature_delta"


def test_empty_stream_is_still_a_complete_message(
    sdk_client: Callable[..., anthropic.Anthropic],
) -> None:
    data = _encode([ResponseStart("msg_1", "m"), Finish("length")])
    assert [p["type"] for p in _validated(data)] == [
        "message_start", "ping", "message_delta", "message_stop"]
    assert _sdk_final_message(sdk_client, data).stop_reason == "max_tokens"


def test_encoded_error_event(sdk_client: Callable[..., anthropic.Anthropic]) -> None:
    encoder = DIALECT.stream_encoder(REQUEST)
    data = encoder.encode(ResponseStart("msg_1", "m")) + encoder.encode(
        PartStart(0, TextPart("partial"))) + encoder.encode_error(Overloaded("busy"))
    payloads = _validated(data)
    assert payloads[-1] == {"type": "error",
                            "error": {"type": "overloaded_error", "message": "busy"}}
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        _sdk_final_message(sdk_client, data)
    with pytest.raises(Overloaded) as info:
        _decode(data)
    assert info.value.origin == "upstream"


# --- decoding what the real API sends ----------------------------------------------------

UPSTREAM: list[tuple[str, dict[str, Any]]] = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01X", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 2, "cache_read_input_tokens": 1000,
                  "cache_creation_input_tokens": 0}}}),
    ("ping", {"type": "ping"}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "thinking", "thinking": "",
                                               "signature": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "thinking_delta", "thinking": "Need data."}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "signature_delta", "signature": "EqQB"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "text_delta", "text": "Okay"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2,
                             "content_block": {"type": "tool_use", "id": "toolu_01",
                                               "name": "get_weather", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta",
                                       "partial_json": "{\"location\": \"San Fra"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta", "partial_json": "ncisco\"}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("message_delta", {"type": "message_delta",
                       "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"output_tokens": 89}}),
    ("message_stop", {"type": "message_stop"}),
]


def _upstream_events(frames: list[tuple[str, dict[str, Any]]]) -> list[SSEEvent]:
    for _, payload in frames:
        if payload["type"] != "ping":
            EVENT.validate_python(payload)
    return [SSEEvent(orjson.dumps(payload), name) for name, payload in frames]


def test_decoder_folds_an_upstream_stream() -> None:
    decoder = DIALECT.stream_decoder()
    accumulator = StreamAccumulator()
    for event in _upstream_events(UPSTREAM):
        for canonical in decoder.feed(event):
            accumulator.add(canonical)
    assert decoder.close() == []
    response = accumulator.result()
    assert (response.id, response.model) == ("msg_01X", "claude-x")
    assert response.parts == [ThinkingPart("Need data.", "EqQB"), TextPart("Okay"),
                              ToolCallPart("toolu_01", "get_weather",
                                           '{"location": "San Francisco"}')]
    assert response.finish_reason == "tool_calls"
    # message_delta gave only output_tokens: the start's input and cache figures stand.
    assert response.usage == Usage(input_tokens=1472, output_tokens=89, cached_tokens=1000)


def test_cut_inside_a_tool_call_never_looks_complete() -> None:
    decoder = DIALECT.stream_decoder()
    accumulator = StreamAccumulator()
    for event in _upstream_events(UPSTREAM[:12]):
        for canonical in decoder.feed(event):
            accumulator.add(canonical)
    assert accumulator.has_open_tool_call()
    assert not accumulator.finished
    with pytest.raises(ConnectionFailed, match="stream ended before completion") as info:
        decoder.close()
    assert info.value.origin == "upstream"


def test_cut_after_message_delta_is_still_a_cut() -> None:
    decoder = DIALECT.stream_decoder()
    for event in _upstream_events(UPSTREAM[:-1]):
        decoder.feed(event)
    with pytest.raises(ConnectionFailed):
        decoder.close()


@pytest.mark.parametrize(("error_type", "cls"), [
    ("overloaded_error", Overloaded), ("rate_limit_error", RateLimited)])
def test_upstream_error_event_raises(error_type: str, cls: type[Exception]) -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed(_upstream_events(UPSTREAM[:1])[0])
    error = {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
    with pytest.raises(cls):
        decoder.feed(SSEEvent(orjson.dumps(error), "error"))


def test_unknown_events_and_deltas_are_ignored() -> None:
    decoder = DIALECT.stream_decoder()
    frames = [*UPSTREAM[:7],
              ("future_event", {"type": "future_event", "x": 1}),
              ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                       "delta": {"type": "citations_delta", "citation": {}}})]
    events: list[StreamEvent] = []
    for name, payload in frames:
        events += decoder.feed(SSEEvent(orjson.dumps(payload), name))
    assert isinstance(events[-1], PartStart)  # nothing came of the last two frames


@pytest.mark.parametrize("frame", [
    SSEEvent(b"{not json", "message_start"),
    SSEEvent(b'{"type": "content_block_start", "index": 0, '
             b'"content_block": {"type": "text", "text": ""}}', "content_block_start"),
    SSEEvent(b'{"type": "content_block_delta", "index": 0, '
             b'"delta": {"type": "text_delta", "text": "x"}}', "content_block_delta"),
])
def test_malformed_upstream_streams(frame: SSEEvent) -> None:
    with pytest.raises(MalformedResponse):
        DIALECT.stream_decoder().feed(frame)
