"""Outbound requests: canonical `ChatRequest` -> Anthropic Messages HTTP request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import (
    ChatRequest,
    Message,
    ResponseFormat,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
)
from turnout.dialects.anthropic_messages import DIALECT
from turnout.dialects.anthropic_messages.request_out import DEFAULT_MAX_TOKENS
from turnout.dialects.base import UpstreamTarget

TARGET = UpstreamTarget("https://api.anthropic.com/v1", "claude-upstream", "sk-ant-test",
                        {"anthropic-beta": "feature-x"})
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}


def _body(request: ChatRequest) -> dict[str, Any]:
    http = DIALECT.build_request(request, TARGET)
    body: dict[str, Any] = orjson.loads(http.body)
    return body


def _request(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="alias", messages=list(messages) or [Message("user", [
        TextPart("hi")])], **fields)


def test_http_shape() -> None:
    http = DIALECT.build_request(_request(), TARGET)
    assert http.method == "POST"
    assert http.url == "https://api.anthropic.com/v1/messages"
    assert http.headers == {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01",
                            "content-type": "application/json", "anthropic-beta": "feature-x"}
    assert orjson.loads(http.body) == {
        "model": "claude-upstream", "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert DEFAULT_MAX_TOKENS == 4096


def test_no_api_key_header_without_a_key() -> None:
    target = UpstreamTarget("http://127.0.0.1:9/v1", "m")
    assert "x-api-key" not in DIALECT.build_request(_request(), target).headers


def test_scalar_fields() -> None:
    body = _body(_request(max_tokens=300, temperature=0.5, top_p=0.8, top_k=20,
                          stop=["###"], user="u-1", stream=True, include_usage=True))
    assert body["max_tokens"] == 300
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.5, 0.8, 20)
    assert body["stop_sequences"] == ["###"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["stream"] is True
    assert "stream_options" not in body and "include_usage" not in body


def test_system_messages_are_hoisted_in_order() -> None:
    body = _body(_request(
        Message("system", [TextPart("First.")]),
        Message("user", [TextPart("Q1")]),
        Message("system", [TextPart("Second."), TextPart("")]),
        Message("assistant", [TextPart("A1")]),
        Message("user", [TextPart("Q2")])))
    assert body["system"] == [{"type": "text", "text": "First."},
                              {"type": "text", "text": "Second."}]
    assert [(m["role"], m["content"][0]["text"]) for m in body["messages"]] == [
        ("user", "Q1"), ("assistant", "A1"), ("user", "Q2")]


def test_tool_round_trip_merges_tool_and_user_turns() -> None:
    body = _body(_request(
        Message("user", [TextPart("Weather?")]),
        Message("assistant", [TextPart(""), ToolCallPart("call_1", "weather", '{"q":"Oslo"}'),
                              ToolCallPart("call_2", "weather", "")]),
        Message("tool", [ToolResultPart("call_1", [TextPart("cold")])]),
        Message("tool", [ToolResultPart("call_2", [TextPart("x"), ImagePart(
            "https://example.com/i.png")], is_error=True)]),
        Message("user", [TextPart("Thanks")]),
        Message("user", [TextPart("More?")]),
    ))
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"q": "Oslo"}},
            {"type": "tool_use", "id": "call_2", "name": "weather", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1",
             "content": [{"type": "text", "text": "cold"}]},
            {"type": "tool_result", "tool_use_id": "call_2", "is_error": True,
             "content": [{"type": "text", "text": "x"},
                         {"type": "image", "source": {"type": "url",
                                                      "url": "https://example.com/i.png"}}]},
            {"type": "text", "text": "Thanks"},
            {"type": "text", "text": "More?"}]},
    ]


def test_tool_results_go_first_when_a_user_message_precedes_them() -> None:
    body = _body(_request(
        Message("assistant", [ToolCallPart("t", "f", "{}")]),
        Message("user", [TextPart("note")]),
        Message("tool", [ToolResultPart("t", [])])))
    assert body["messages"][1]["content"] == [
        {"type": "tool_result", "tool_use_id": "t"}, {"type": "text", "text": "note"}]


def test_images_and_thinking() -> None:
    body = _body(_request(
        Message("user", [ImagePart("data:image/png;base64,AAAA", detail="high"),
                         ImagePart("https://example.com/a.jpg")]),
        Message("assistant", [ThinkingPart("why", "sig"), ThinkingPart("", None, "enc"),
                              ThinkingPart("foreign reasoning"), TextPart("ok")])))
    user, assistant = body["messages"]
    assert user["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}]
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "why", "signature": "sig"},
        {"type": "redacted_thinking", "data": "enc"},
        {"type": "text", "text": "ok"}]


def test_tools_and_tool_choice() -> None:
    tools = [ToolDefinition("search", "Search the web", SCHEMA, strict=True),
             ToolDefinition("noop")]
    body = _body(_request(tools=tools, tool_choice=ToolChoice("required"),
                          parallel_tool_calls=False))
    assert body["tools"] == [
        {"name": "search", "description": "Search the web", "input_schema": SCHEMA,
         "strict": True},
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}}]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(("choice", "parallel", "wire"), [
    (None, None, None),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (ToolChoice("auto"), None, {"type": "auto"}),
    (ToolChoice("none"), None, {"type": "none"}),
    (ToolChoice("tool", "search"), None, {"type": "tool", "name": "search"}),
])
def test_tool_choice_modes(choice: ToolChoice | None, parallel: bool | None,
                           wire: dict[str, Any] | None) -> None:
    body = _body(_request(tools=[ToolDefinition("search")], tool_choice=choice,
                          parallel_tool_calls=parallel))
    assert body.get("tool_choice") == wire


@pytest.mark.parametrize(("config", "max_tokens", "wire"), [
    (ThinkingConfig(budget_tokens=3000), 8000, {"type": "enabled", "budget_tokens": 3000}),
    (ThinkingConfig(effort="low"), 8000, {"type": "enabled", "budget_tokens": 2048}),
    (ThinkingConfig(effort="high"), 8000, {"type": "enabled", "budget_tokens": 7999}),
    (ThinkingConfig(), None, {"type": "enabled", "budget_tokens": 4095}),
    (ThinkingConfig(enabled=False), None, {"type": "disabled"}),
])
def test_thinking(config: ThinkingConfig, max_tokens: int | None,
                  wire: dict[str, Any]) -> None:
    assert _body(_request(thinking=config, max_tokens=max_tokens))["thinking"] == wire


@pytest.mark.parametrize(("fields", "param"), [
    ({"response_format": ResponseFormat("json_schema", "out", SCHEMA)}, "response_format"),
    ({"response_format": ResponseFormat("json_object")}, "response_format"),
    ({"seed": 7}, "seed"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"presence_penalty": 0.0}, "presence_penalty"),
    ({"temperature": 1.5}, "temperature"),
])
def test_inexpressible_features_raise(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        DIALECT.build_request(_request(**fields), TARGET)
    assert info.value.param == param
    if param == "response_format":
        assert "cannot be expressed on the Anthropic Messages API" in info.value.message


def test_text_response_format_is_fine() -> None:
    assert "response_format" not in _body(_request(response_format=ResponseFormat("text")))


@pytest.mark.parametrize("request_", [
    _request(Message("assistant", [ToolCallPart("t", "f", "{not json")])),
    _request(Message("assistant", [ToolCallPart("t", "f", "[1]")])),
    _request(Message("user", [ToolCallPart("t", "f", "{}")])),
    _request(Message("user", [ImagePart("ftp://example.com/x.png")])),
    _request(Message("user", [ImagePart("data:image/png,notbase64")])),
    _request(Message("user", [TextPart("")])),
    _request(tool_choice=ToolChoice("required")),
    _request(thinking=ThinkingConfig(effort="low"), max_tokens=1000),
])
def test_invalid_canonical_requests(request_: ChatRequest) -> None:
    with pytest.raises(InvalidRequest) as info:
        DIALECT.build_request(request_, TARGET)
    assert info.value.param


def test_sdk_accepts_the_body(capture_sdk_body: Callable[..., dict[str, Any]]) -> None:
    """The official SDK's typed `create()` takes every key we send (it raises TypeError on an
    unknown one) and re-serialises the body unchanged."""
    body = _body(_request(
        Message("system", [TextPart("sys")]),
        Message("user", [TextPart("q"), ImagePart("data:image/gif;base64,R0lG")]),
        Message("assistant", [ThinkingPart("t", "s"), ToolCallPart("c", "search", "{}")]),
        Message("tool", [ToolResultPart("c", [TextPart("r")])]),
        tools=[ToolDefinition("search", "d", SCHEMA)], tool_choice=ToolChoice("auto"),
        stop=["x"], user="u", thinking=ThinkingConfig(budget_tokens=1024), max_tokens=2000))
    assert capture_sdk_body(**body) == body


def test_outbound_body_decodes_back_to_the_same_request() -> None:
    original = _request(
        Message("system", [TextPart("sys")]),
        Message("user", [TextPart("q")]),
        Message("assistant", [ThinkingPart("t", "s"), TextPart("calling"),
                              ToolCallPart("c", "search", '{"q":"x"}')]),
        Message("tool", [ToolResultPart("c", [TextPart("r")], name="search")]),
        Message("user", [TextPart("and?")]),
        tools=[ToolDefinition("search", "d", SCHEMA)], tool_choice=ToolChoice("tool", "search"),
        max_tokens=2048, temperature=0.3, stop=["x"], user="u",
        thinking=ThinkingConfig(budget_tokens=1024))
    decoded = DIALECT.decode_request(_body(original), model="alias")
    assert decoded == original
