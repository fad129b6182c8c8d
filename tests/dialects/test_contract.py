"""The contract every dialect passes, in stream and non-stream mode.

Each dialect is used in both directions, so each must agree with itself: what its inbound
side encodes, its outbound side decodes to the same canonical value, and the other way
round. Dialect-specific tests check the wire format against the official SDKs; this suite
checks that no dialect loses or invents anything, with one set of cases for all.
"""

from __future__ import annotations

import copy

import orjson
import pytest

from turnout.core import errors
from turnout.core.events import StreamAccumulator
from turnout.core.parts import TextPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest, Message, ToolChoice, ToolDefinition
from turnout.core.response import ChatResponse, Usage
from turnout.dialects.base import Dialect, UpstreamTarget
from turnout.dialects.registry import DIALECT_MODULES, get_dialect
from turnout.transport.sse import SSEParser

DIALECTS = sorted(DIALECT_MODULES)
WEATHER = ToolDefinition(
    "get_weather", "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def responses() -> dict[str, ChatResponse]:
    return {
        "text": ChatResponse(
            id="r1", model="m", parts=[TextPart("Hello there, friend.")], finish_reason="stop",
            usage=Usage(input_tokens=12, output_tokens=5)),
        "length": ChatResponse(
            id="r2", model="m", parts=[TextPart("Cut sh")], finish_reason="length",
            usage=Usage(input_tokens=3, output_tokens=2)),
        "tool_calls": ChatResponse(
            id="r3", model="m", finish_reason="tool_calls",
            parts=[TextPart("Checking."),
                   ToolCallPart("call_1", "get_weather", '{"city":"Paris"}'),
                   ToolCallPart("call_2", "get_weather", '{"city":"Rome"}')],
            usage=Usage(input_tokens=40, output_tokens=20)),
    }


def requests() -> dict[str, ChatRequest]:
    return {
        "plain": ChatRequest(model="m", messages=[Message("user", [TextPart("Hi")])],
                             max_tokens=50, temperature=0.5),
        "system_multi_turn": ChatRequest(model="m", max_tokens=50, messages=[
            Message("system", [TextPart("Be brief.")]),
            Message("user", [TextPart("Hi")]),
            Message("assistant", [TextPart("Hello!")]),
            Message("user", [TextPart("Again")])]),
        "tool_round_trip": ChatRequest(
            model="m", max_tokens=50, tools=[WEATHER], tool_choice=ToolChoice("auto"),
            messages=[
                Message("user", [TextPart("Weather in Paris?")]),
                Message("assistant", [ToolCallPart("call_1", "get_weather",
                                                   '{"city":"Paris"}')]),
                Message("tool", [ToolResultPart("call_1", [TextPart("18C, sunny")],
                                                name="get_weather")]),
            ]),
    }


def comparable(response: ChatResponse) -> tuple[object, ...]:
    calls = [(c.name, orjson.loads(c.arguments)) for c in response.tool_calls()]
    usage = response.usage
    return (response.text(), calls, response.finish_reason, usage.input_tokens,
            usage.output_tokens)


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return get_dialect(request.param)


@pytest.mark.parametrize("case", sorted(responses()))
def test_response_round_trip_non_stream(dialect: Dialect, case: str) -> None:
    original = responses()[case]
    wire = orjson.dumps(dialect.encode_response(copy.deepcopy(original)))
    assert comparable(dialect.decode_response(wire)) == comparable(original)


@pytest.mark.parametrize("case", sorted(responses()))
def test_stream_folds_to_the_non_stream_response(dialect: Dialect, case: str) -> None:
    from turnout.core.events import response_to_events

    original = responses()[case]
    request = ChatRequest(model="m", messages=[Message("user", [TextPart("x")])],
                          stream=True, include_usage=True)
    encoder = dialect.stream_encoder(request)
    wire = b"".join(encoder.encode(e) for e in response_to_events(copy.deepcopy(original)))
    wire += encoder.done()
    parser, decoder, folded = SSEParser(), dialect.stream_decoder(), StreamAccumulator()
    for sse in parser.feed(wire) + parser.flush():
        for event in decoder.feed(sse):
            folded.add(event)
    for event in decoder.close():
        folded.add(event)
    assert folded.finished
    assert comparable(folded.result()) == comparable(original)
    non_stream = dialect.decode_response(orjson.dumps(dialect.encode_response(
        copy.deepcopy(original))))
    assert comparable(folded.result()) == comparable(non_stream)


def test_stream_cut_before_its_end_is_never_complete(dialect: Dialect) -> None:
    from turnout.core.events import response_to_events

    original = responses()["tool_calls"]
    request = ChatRequest(model="m", messages=[Message("user", [TextPart("x")])], stream=True)
    encoder = dialect.stream_encoder(request)
    events = response_to_events(copy.deepcopy(original))
    # Everything up to the middle of the first tool call's arguments.
    cut = next(i for i, e in enumerate(events) if type(e).__name__ == "ToolArgsDelta")
    wire = b"".join(encoder.encode(e) for e in events[:cut])
    parser, decoder = SSEParser(), dialect.stream_decoder()
    with pytest.raises(errors.ConnectionFailed):
        for sse in parser.feed(wire) + parser.flush():
            decoder.feed(sse)
        decoder.close()


@pytest.mark.parametrize("case", sorted(requests()))
def test_outbound_request_decodes_inbound_to_the_same_request(dialect: Dialect,
                                                               case: str) -> None:
    """A provider of this dialect would understand exactly what the gateway meant."""
    original = requests()[case]
    http = dialect.build_request(copy.deepcopy(original), UpstreamTarget("http://h/v1", "m"))
    assert http.method == "POST"
    decoded = dialect.decode_request(orjson.loads(http.body), model="m",
                                     stream="stream" in http.url)
    assert [(m.role, m.text()) for m in decoded.messages] == [
        (m.role, m.text()) for m in original.messages]
    assert [(c.name, orjson.loads(c.arguments)) for m in decoded.messages
            for c in m.tool_calls()] == [(c.name, orjson.loads(c.arguments))
                                         for m in original.messages for c in m.tool_calls()]
    # Ids may be rewritten (Gemini only echoes ids it issued), but every result must still
    # answer the call it answered before.
    calls = {c.id: c.name for m in decoded.messages for c in m.tool_calls()}
    results = [(calls.get(p.tool_call_id, p.name), p.text()) for m in decoded.messages
               for p in m.parts if isinstance(p, ToolResultPart)]
    assert results == [("get_weather", p.text()) for m in original.messages for p in m.parts
                       if isinstance(p, ToolResultPart)]
    assert [t.name for t in decoded.tools] == [t.name for t in original.tools]
    assert decoded.max_tokens == original.max_tokens
    assert decoded.temperature == original.temperature


@pytest.mark.parametrize("error", [
    errors.InvalidRequest("bad"), errors.AuthenticationFailed("who"),
    errors.PermissionDenied("no"), errors.ModelNotFound("gone"),
    errors.RateLimited("slow down", retry_after=7), errors.Overloaded("busy"),
    errors.ServerError("boom"),
], ids=lambda e: type(e).__name__)
def test_error_round_trip_keeps_status_class_and_retry_after(
    dialect: Dialect, error: errors.TurnoutError
) -> None:
    """Not every wire format has a distinct code for every class (Anthropic has one
    `not_found_error`; OpenAI and Gemini have no overloaded status), so the contract is:
    same failover class and retryability, and the upstream's wait kept."""
    from turnout.config.policies import fallback_reason

    status, headers, body = dialect.encode_error(error)
    decoded = dialect.decode_error(status, {k.lower(): v for k, v in headers.items()},
                                   orjson.dumps(body))
    assert decoded.origin == "upstream"
    assert decoded.retryable == error.retryable
    expected = fallback_reason(error)
    if isinstance(error, errors.ModelNotFound):
        assert isinstance(decoded, errors.NotFound)
    elif isinstance(error, errors.Overloaded):
        assert fallback_reason(decoded) in ("overloaded", "server_error")
    else:
        assert fallback_reason(decoded) == expected
        assert type(decoded) is type(error)
    if error.retry_after is not None:
        assert decoded.retry_after == error.retry_after


def test_invalid_bodies_are_invalid_requests(dialect: Dialect) -> None:
    for body in ([], "text", 3, None, {}):
        with pytest.raises(errors.InvalidRequest):
            dialect.decode_request(body, model="m", stream=False)


def test_malformed_upstream_bodies_are_malformed_responses(dialect: Dialect) -> None:
    for body in (b"{not json", b"[]", b'{"unexpected": true}'):
        with pytest.raises(errors.MalformedResponse):
            dialect.decode_response(body)
