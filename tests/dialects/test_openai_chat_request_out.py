"""Outbound: canonical requests into Chat Completions HTTP requests for providers."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest
from _openai_shapes import check_shape
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)

from turnout.core.errors import UnsupportedFeature
from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import (
    ChatRequest,
    Message,
    ResponseFormat,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
)
from turnout.dialects.base import UpstreamTarget
from turnout.dialects.openai_chat import DIALECT

TARGET = UpstreamTarget("https://api.openai.com/v1", "gpt-4o-2024-08-06", api_key="sk-test",
                        headers={"OpenAI-Organization": "org-1"})
PNG = "data:image/png;base64,iVBORw0KGgo="
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}}


def full_request(**overrides: Any) -> ChatRequest:
    request = ChatRequest(
        model="alias",
        messages=[
            Message("system", [TextPart("Be terse.")]),
            Message("user", [TextPart("Weather here?"), ImagePart(PNG, "low")], name="bob"),
            Message("assistant", [ThinkingPart("secret plan", signature="sig"),
                                  TextPart("Checking."),
                                  ToolCallPart("call_1", "weather", '{"city":"Oslo"}'),
                                  ToolCallPart("call_2", "weather", '{"city":"Rome"}')]),
            Message("tool", [ToolResultPart("call_1", [TextPart("-3C")], name="weather"),
                             ToolResultPart("call_2", [TextPart("2"), TextPart("1C")])]),
        ],
        tools=[ToolDefinition("weather", "Current weather", PARAMS, strict=True)],
        tool_choice=ToolChoice("tool", "weather"),
        parallel_tool_calls=False,
        response_format=ResponseFormat("json_schema", "answer", {"type": "object"}, True),
        max_tokens=100, temperature=0.5, top_p=0.9, frequency_penalty=0.1,
        presence_penalty=0.2, stop=["END"], seed=3, user="u-9", metadata={"team": "a"},
    )
    for key, value in overrides.items():
        setattr(request, key, value)
    return request


def body_of(request: ChatRequest, target: UpstreamTarget = TARGET) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(DIALECT.build_request(request, target).body)
    check_shape(body, CompletionCreateParamsStreaming if request.stream
                else CompletionCreateParamsNonStreaming)
    return body


def test_http_request_line_and_headers() -> None:
    http = DIALECT.build_request(full_request(), TARGET)
    assert http.method == "POST"
    assert http.url == "https://api.openai.com/v1/chat/completions"
    assert http.headers == {"Authorization": "Bearer sk-test", "Content-Type": "application/json",
                            "OpenAI-Organization": "org-1"}
    keyless = DIALECT.build_request(full_request(), UpstreamTarget("http://127.0.0.1:11434/v1",
                                                                   "llama3"))
    assert "Authorization" not in keyless.headers
    assert keyless.url == "http://127.0.0.1:11434/v1/chat/completions"


def test_body_field_by_field() -> None:
    body = body_of(full_request())
    assert body["model"] == "gpt-4o-2024-08-06"
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "name": "bob", "content": [
            {"type": "text", "text": "Weather here?"},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}]},
        # Thinking is omitted: Chat Completions cannot take reasoning back.
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "21C"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "Current weather", "parameters": PARAMS,
        "strict": True}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object"}, "strict": True}}
    assert body["max_tokens"] == 100 and "max_completion_tokens" not in body
    assert (body["temperature"], body["top_p"], body["seed"], body["user"]) == (0.5, 0.9, 3, "u-9")
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0.1, 0.2)
    assert body["stop"] == ["END"]
    # Gateway tags are not forwarded; no streaming keys on a non-stream call.
    assert not {"metadata", "stream", "stream_options", "reasoning_effort"} & body.keys()


def test_stream_always_asks_for_usage() -> None:
    body = body_of(full_request(stream=True, include_usage=False))
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_the_sdk_sends_the_same_body() -> None:
    """Every key we send is an SDK `create()` parameter: the SDK rejects unknown keyword
    arguments, and re-serialises our values to the same JSON."""
    sent: list[Any] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(orjson.loads(request.content))
        return httpx2.Response(500, json={"error": {"message": "stop here"}})

    body = body_of(full_request(thinking=ThinkingConfig(effort="low")))
    client = openai.AsyncOpenAI(api_key="k", base_url="http://sdk.test/v1", max_retries=0,
                                http_client=httpx2.AsyncClient(
                                    transport=httpx2.MockTransport(handler)))
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(**body)
    await client.close()
    assert sent == [body]


def test_reasoning_effort_uses_max_completion_tokens() -> None:
    body = body_of(full_request(thinking=ThinkingConfig(effort="high")))
    assert body["reasoning_effort"] == "high"
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body


@pytest.mark.parametrize(("thinking", "effort"), [
    (ThinkingConfig(budget_tokens=512), "minimal"),
    (ThinkingConfig(budget_tokens=1024), "low"),
    (ThinkingConfig(budget_tokens=4096), "low"),
    (ThinkingConfig(budget_tokens=8000), "medium"),
    (ThinkingConfig(budget_tokens=16384), "medium"),
    (ThinkingConfig(budget_tokens=32000), "high"),
    (ThinkingConfig(), "medium"),
    (ThinkingConfig(enabled=False), "none"),
])
def test_thinking_budget_maps_to_an_effort(thinking: ThinkingConfig, effort: str) -> None:
    assert body_of(full_request(thinking=thinking))["reasoning_effort"] == effort


def test_assistant_with_only_tool_calls_has_null_content() -> None:
    request = ChatRequest("m", [Message("user", [TextPart("x")]),
                                Message("assistant", [ToolCallPart("c", "f", "{}")])])
    assistant = body_of(request)["messages"][1]
    assert assistant == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_json_object_and_unnamed_schema() -> None:
    assert body_of(full_request(response_format=ResponseFormat("json_object")))[
        "response_format"] == {"type": "json_object"}
    unnamed = body_of(full_request(response_format=ResponseFormat("json_schema",
                                                                  schema={"type": "object"})))
    assert unnamed["response_format"]["json_schema"] == {"name": "response",
                                                         "schema": {"type": "object"}}


@pytest.mark.parametrize(("overrides", "param"), [
    ({"top_k": 40}, "top_k"),
    ({"messages": [Message("tool", [ToolResultPart("c", [ImagePart(PNG)])])]}, "messages[0]"),
    ({"messages": [Message("system", [ImagePart(PNG)])]}, "messages[0]"),
    ({"messages": [Message("assistant", [ImagePart(PNG)])]}, "messages[0]"),
])
def test_inexpressible_requests_raise(overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        DIALECT.build_request(full_request(**overrides), TARGET)
    assert info.value.param == param


def test_outbound_then_inbound_round_trip() -> None:
    """What we send an OpenAI-compatible upstream decodes back to the same request (minus
    what the format cannot carry: thinking in history, gateway metadata)."""
    original = full_request(stream=True, include_usage=True, thinking=ThinkingConfig(
        effort="medium"))
    decoded = DIALECT.decode_request(body_of(original))
    expected = full_request(stream=True, include_usage=True,
                            thinking=ThinkingConfig(effort="medium"), metadata={})
    expected.model = TARGET.model
    assistant = expected.messages[2]
    assistant.parts = assistant.parts[1:]
    # One tool message per result; the text of a multi-part result is joined.
    expected.messages[3:] = [
        Message("tool", [ToolResultPart("call_1", [TextPart("-3C")], name="weather")]),
        Message("tool", [ToolResultPart("call_2", [TextPart("21C")], name="weather")]),
    ]
    assert decoded == expected
