"""Streams: canonical events into `chat.completion.chunk` SSE, and provider chunks back."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from turnout.core.errors import (
    ConnectionFailed,
    ContextWindowExceeded,
    MalformedResponse,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)
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
from turnout.dialects.base import SSEEvent
from turnout.dialects.openai_chat import DIALECT
from turnout.transport.sse import SSEParser

HEAD = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini"}


def request(include_usage: bool = True) -> ChatRequest:
    return ChatRequest("gpt-4o-mini", [Message("user", [TextPart("hi")])], stream=True,
                       include_usage=include_usage)


def encode_all(events: list[StreamEvent], include_usage: bool = True) -> bytes:
    encoder = DIALECT.stream_encoder(request(include_usage))
    return b"".join(encoder.encode(e) for e in events) + encoder.done()


def sse_events(raw: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(raw) + parser.flush()


def chunks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON chunks of an encoded stream, each validated by the SDK; asserts [DONE]."""
    events = sse_events(raw)
    assert events[-1].data == b"[DONE]"
    out = []
    for event in events[:-1]:
        chunk = orjson.loads(event.data)
        ChatCompletionChunk.model_validate(chunk)
        out.append(chunk)
    return out


def decode_all(raw: bytes | list[dict[str, Any] | str]) -> list[StreamEvent]:
    if isinstance(raw, list):
        raw = b"".join(b"data: " + (orjson.dumps(c) if isinstance(c, dict) else c.encode())
                       + b"\n\n" for c in raw)
    decoder = DIALECT.stream_decoder()
    events: list[StreamEvent] = []
    for sse in sse_events(raw):
        events += decoder.feed(sse)
    return events + decoder.close()


def fold(events: list[StreamEvent]) -> ChatResponse:
    accumulator = StreamAccumulator()
    for event in events:
        accumulator.add(event)
    assert accumulator.finished and not accumulator.open_parts
    return accumulator.result()


def parallel_tools() -> ChatResponse:
    return ChatResponse(
        id="chatcmpl-9", model="gpt-4o-mini", created=1_700_000_000,
        parts=[TextPart("Checking both."),
               ToolCallPart("call_a", "weather", '{"city":"Oslo"}'),
               ToolCallPart("call_b", "time", '{"tz":"CET"}')],
        finish_reason="tool_calls", usage=Usage(50, 20, cached_tokens=10),
    )


# --- encoder ---------------------------------------------------------------------------------

def test_encoded_chunks_follow_the_published_stream_shape() -> None:
    events: list[StreamEvent] = [
        ResponseStart("chatcmpl-9", "gpt-4o-mini", 1_700_000_000),
        PartStart(0, TextPart("")), TextDelta(0, "Hel"), TextDelta(0, "lo"), PartEnd(0),
        UsageUpdate(Usage(9, 2)), Finish("stop"),
    ]
    open_choice = {"index": 0, "logprobs": None, "finish_reason": None}
    # Written from the API reference's streaming example.
    assert chunks(encode_all(events)) == [
        HEAD | {"choices": [open_choice | {"delta": {"role": "assistant", "content": ""}}]},
        HEAD | {"choices": [open_choice | {"delta": {"content": "Hel"}}]},
        HEAD | {"choices": [open_choice | {"delta": {"content": "lo"}}]},
        HEAD | {"choices": [{"index": 0, "delta": {}, "logprobs": None,
                             "finish_reason": "stop"}]},
        HEAD | {"choices": [], "usage": {
            "prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}}},
    ]


def test_tool_call_indexes_count_tool_calls_not_parts() -> None:
    got = chunks(encode_all(response_to_events(parallel_tools())))
    tool_deltas = [c["choices"][0]["delta"]["tool_calls"] for c in got
                   if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert tool_deltas == [
        [{"index": 0, "id": "call_a", "type": "function",
          "function": {"name": "weather", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}],
        [{"index": 1, "id": "call_b", "type": "function",
          "function": {"name": "time", "arguments": ""}}],
        [{"index": 1, "function": {"arguments": '{"tz":"CET"}'}}],
    ]
    assert got[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_no_usage_chunk_unless_asked() -> None:
    got = chunks(encode_all(response_to_events(parallel_tools()), include_usage=False))
    assert all(c["choices"] and "usage" not in c for c in got)


def test_thinking_streams_as_reasoning_content() -> None:
    events: list[StreamEvent] = [ResponseStart("r", "m", 1), PartStart(0, ThinkingPart("")),
                                 ThinkingDelta(0, "hmm", signature="sig"), PartEnd(0),
                                 Finish("stop")]
    got = chunks(encode_all(events, include_usage=False))
    assert got[1]["choices"][0]["delta"] == {"reasoning_content": "hmm"}


def test_encode_error_event_is_an_error_body() -> None:
    encoder = DIALECT.stream_encoder(request())
    raw = encoder.encode_error(RateLimited("slow down", retry_after=2.0))
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n")
    assert orjson.loads(raw[6:]) == {"error": {
        "message": "slow down", "type": "rate_limit_error", "param": None,
        "code": "rate_limit_exceeded"}}


@pytest.mark.parametrize("response", [
    parallel_tools(),
    ChatResponse("chatcmpl-1", "m", [TextPart("Just text.")], "length", created=7,
                 usage=Usage(3, 4)),
    ChatResponse("chatcmpl-2", "m", [ThinkingPart("Think first."), TextPart("Answer.")],
                 "stop", created=7, usage=Usage(3, 40, reasoning_tokens=30)),
    ChatResponse("chatcmpl-3", "m", [ToolCallPart("c1", "a", "{}"), ToolCallPart("c2", "b",
                                                                               '{"x":1}')],
                 "tool_calls", created=7, usage=Usage(1, 2)),
])
def test_stream_round_trip_equals_non_stream_round_trip(response: ChatResponse) -> None:
    via_body = DIALECT.decode_response(orjson.dumps(DIALECT.encode_response(response)))
    via_stream = fold(decode_all(encode_all(response_to_events(response))))
    assert via_stream == via_body
    assert via_body.parts == response.parts and via_body.usage == response.usage


# --- decoder ---------------------------------------------------------------------------------

def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish}]
    return HEAD | {"choices": choices} | extra


def test_decode_interleaved_parallel_tool_calls_and_late_usage() -> None:
    events = decode_all([
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function",
             "function": {"name": "weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "time", "arguments": '{"tz"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": ':"CET"}'}}]}),
        chunk({}, "tool_calls"),
        chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}),
        "[DONE]",
    ])
    assert events == [
        ResponseStart("chatcmpl-9", "gpt-4o-mini", 1_700_000_000),
        PartStart(0, ToolCallPart("call_a", "weather", "")),
        PartStart(1, ToolCallPart("call_b", "time", "")),
        ToolArgsDelta(1, '{"tz"'),
        ToolArgsDelta(0, '{"city":"Oslo"}'),
        ToolArgsDelta(1, ':"CET"}'),
        PartEnd(0), PartEnd(1), Finish("tool_calls"),
        UsageUpdate(Usage(5, 6)),
    ]
    folded = fold(events)
    assert folded.tool_calls() == [ToolCallPart("call_a", "weather", '{"city":"Oslo"}'),
                                   ToolCallPart("call_b", "time", '{"tz":"CET"}')]
    assert folded.usage == Usage(5, 6)


def test_decode_reasoning_then_text_then_tool_ends_parts_in_order() -> None:
    events = decode_all([
        chunk({"role": "assistant", "reasoning_content": "think"}),
        chunk({"content": "Sure."}),
        chunk({"tool_calls": [{"index": 0, "id": "c", "type": "function",
                               "function": {"name": "f", "arguments": "{}"}}]}),
        chunk({}, "tool_calls", usage={"prompt_tokens": 1, "completion_tokens": 2,
                                       "total_tokens": 3}),
    ])
    assert events[1:] == [
        PartStart(0, ThinkingPart("")), ThinkingDelta(0, "think"),
        PartEnd(0), PartStart(1, TextPart("")), TextDelta(1, "Sure."),
        PartEnd(1), PartStart(2, ToolCallPart("c", "f", "")), ToolArgsDelta(2, "{}"),
        UsageUpdate(Usage(1, 2)), PartEnd(2), Finish("tool_calls"),
    ]


def test_decode_refusal_and_vllm_stop_reason() -> None:
    refused = fold(decode_all([chunk({"role": "assistant", "refusal": "No."}),
                               chunk({}, "stop"), "[DONE]"]))
    assert refused.text() == "No." and refused.finish_reason == "content_filter"
    stopped = decode_all([chunk({"content": "a"}),
                          HEAD | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                               "stop_reason": "END"}]}])
    assert stopped[-1] == Finish("stop_sequence", "END")


def test_keepalives_are_ignored_and_done_without_finish_completes() -> None:
    raw = (b": keep-alive\n\n" + b"data: " + orjson.dumps(chunk({"content": "hi"})) + b"\n\n"
           + b"data:\n\n" + b"data: [DONE]\n\n")
    events = decode_all(raw)
    assert events[-2:] == [PartEnd(0), Finish("stop")]
    assert fold(events).text() == "hi"


def test_stream_cut_before_done_raises_connection_failed() -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed(SSEEvent(orjson.dumps(chunk({"role": "assistant", "content": "Hal"}))))
    with pytest.raises(ConnectionFailed) as info:
        decoder.close()
    assert info.value.origin == "upstream" and info.value.retryable


def test_finish_without_done_is_complete() -> None:
    assert decode_all([chunk({"content": "a"}), chunk({}, "length")])[-1] == Finish("length")


@pytest.mark.parametrize(("payload", "cls", "status"), [
    ({"error": {"message": "Rate limit reached", "type": "requests",
                "code": "rate_limit_exceeded", "param": None}}, RateLimited, None),
    ({"error": {"message": "too long", "type": "invalid_request_error",
                "code": "context_length_exceeded"}}, ContextWindowExceeded, None),
    ({"error": {"message": "boom", "type": "server_error", "code": None}}, ServerError, None),
    # OpenRouter puts the HTTP status in a numeric `code`.
    ({"error": {"message": "Provider returned error", "code": 503}}, ServiceUnavailable, 503),
])
def test_error_event_in_a_200_stream_raises_mapped_error(
    payload: dict[str, Any], cls: type[Exception], status: int | None
) -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed(SSEEvent(orjson.dumps(chunk({"content": "partial"}))))
    with pytest.raises(cls) as info:
        decoder.feed(SSEEvent(orjson.dumps(payload)))
    assert type(info.value) is cls
    assert info.value.origin == "upstream"  # type: ignore[attr-defined]
    assert info.value.upstream_status == status  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", [
    b"{not json", b"[1, 2]", orjson.dumps(HEAD | {"choices": {"0": {}}}),
    orjson.dumps(chunk({"content": 5})),
    orjson.dumps(chunk({"tool_calls": [{"index": "zero"}]})),
])
def test_malformed_stream_events(data: bytes) -> None:
    with pytest.raises(MalformedResponse):
        DIALECT.stream_decoder().feed(SSEEvent(data))


def test_done_before_any_chunk_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        DIALECT.stream_decoder().feed(SSEEvent(b"[DONE]"))


def test_azure_prompt_filter_chunk_does_not_start_the_response() -> None:
    azure_first = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                   "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
    events = decode_all([azure_first, chunk({"role": "assistant", "content": "Hi"}),
                         chunk({}, "stop"), "[DONE]"])
    assert events[0] == ResponseStart("chatcmpl-9", "gpt-4o-mini", 1_700_000_000)
    assert fold(events).text() == "Hi"
