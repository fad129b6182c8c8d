"""Outbound: canonical requests -> Gemini HTTP requests, checked field by field and with the
SDK's own pydantic types (which reject unknown fields)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from _gemini_helpers import PNG, SIG_A, SIG_B
from google.genai import types

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
from turnout.dialects.base import UpstreamTarget
from turnout.dialects.gemini import DIALECT

TARGET = UpstreamTarget("https://generativelanguage.googleapis.com/v1beta",
                        "gemini-2.5-flash", api_key="key-1", headers={"x-extra": "1"})
WEATHER = ToolDefinition("weather", "Weather now", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
    "additionalProperties": False, "$defs": {"unit": {"enum": ["C", "F"]}}})


def body_of(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(DIALECT.build_request(request, TARGET).body)
    _check_with_sdk(body)
    return body


def _check_with_sdk(body: dict[str, Any]) -> None:
    """Every piece must be a valid instance of the SDK's wire types."""
    assert set(body) <= {"contents", "systemInstruction", "tools", "toolConfig",
                         "generationConfig"}
    for content in body["contents"]:
        types.Content.model_validate_json(orjson.dumps(content))
        assert content["role"] in ("user", "model") and content["parts"]
    roles = [c["role"] for c in body["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    if "systemInstruction" in body:
        types.Content.model_validate_json(orjson.dumps(body["systemInstruction"]))
    for tool in body.get("tools", []):
        types.Tool.model_validate_json(orjson.dumps(tool))
    if "toolConfig" in body:
        types.ToolConfig.model_validate_json(orjson.dumps(body["toolConfig"]))
    if "generationConfig" in body:
        types.GenerationConfig.model_validate_json(orjson.dumps(body["generationConfig"]))


def chat(*messages: Message, **kwargs: Any) -> ChatRequest:
    return ChatRequest("alias", list(messages), **kwargs)


def test_url_and_headers() -> None:
    http = DIALECT.build_request(chat(Message("user", [TextPart("hi")])), TARGET)
    assert http.method == "POST"
    assert http.url == ("https://generativelanguage.googleapis.com/v1beta/models/"
                        "gemini-2.5-flash:generateContent")
    assert http.headers == {"content-type": "application/json", "x-goog-api-key": "key-1",
                            "x-extra": "1"}
    streamed = DIALECT.build_request(chat(Message("user", [TextPart("hi")]), stream=True),
                                     UpstreamTarget("http://h/v1beta", "tunedModels/t1"))
    assert streamed.url == "http://h/v1beta/tunedModels/t1:streamGenerateContent?alt=sse"
    assert "x-goog-api-key" not in streamed.headers


def test_full_conversation_field_by_field() -> None:
    request = chat(
        Message("system", [TextPart("Be terse.")]),
        Message("user", [TextPart("Weather in Paris? And this:"), ImagePart(PNG)]),
        Message("system", [TextPart("Use metric.")]),
        Message("assistant", [
            ThinkingPart("Need the tool.", SIG_A),
            ThinkingPart("", SIG_B),
            ToolCallPart("gemini_fc1", "weather", '{"city": "Paris"}'),
            ToolCallPart("call_abc", "weather", ""),
        ]),
        Message("tool", [ToolResultPart("gemini_fc1", [TextPart('{"temp": 21}')]),
                         ToolResultPart("call_abc", [TextPart("no such city")],
                                        is_error=True)]),
        Message("user", [TextPart("Thanks")]),
        tools=[WEATHER], tool_choice=ToolChoice("auto"), max_tokens=100, temperature=0.3,
        top_p=0.8, top_k=20, stop=["\n\n"], seed=1, presence_penalty=0.1,
        frequency_penalty=0.2, user="u-1", metadata={"team": "a"}, include_usage=True,
    )
    body = body_of(request)
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse.\n\nUse metric."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [
            {"text": "Weather in Paris? And this:"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "model", "parts": [
            {"text": "Need the tool.", "thought": True, "thoughtSignature": SIG_A},
            # Gemini issued `fc1`: it goes back; our carrier's signature rides on the call.
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}, "id": "fc1"},
             "thoughtSignature": SIG_B},
            # Another provider's id is never sent; empty arguments are an empty object.
            {"functionCall": {"name": "weather", "args": {}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "fc1", "name": "weather",
                                  "response": {"temp": 21}}},
            {"functionResponse": {"name": "weather",
                                  "response": {"error": "no such city"}}},
            {"text": "Thanks"}]},
    ]
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "weather", "description": "Weather now",
        # JSON Schema passes unchanged, `$defs` and `additionalProperties` included.
        "parametersJsonSchema": WEATHER.parameters}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"] == {
        "temperature": 0.3, "topP": 0.8, "topK": 20, "maxOutputTokens": 100, "seed": 1,
        "presencePenalty": 0.1, "frequencyPenalty": 0.2, "stopSequences": ["\n\n"]}


def test_tool_result_name_comes_from_the_part_or_the_earlier_call() -> None:
    named = body_of(chat(Message("user", [TextPart("q")]),
                         Message("tool", [ToolResultPart("x", [TextPart("plain")],
                                                         name="lookup")])))
    assert named["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "lookup", "response": {"result": "plain"}}}
    with pytest.raises(InvalidRequest) as info:
        body_of(chat(Message("user", [TextPart("q")]),
                     Message("assistant", [ToolCallPart("a", "f", "{}")]),
                     Message("tool", [ToolResultPart("b", [TextPart("r")])])))
    assert info.value.param == "messages.2.parts.0"


@pytest.mark.parametrize(("text", "is_error", "expected"), [
    ('{"a": [1, 2]}', False, {"a": [1, 2]}),
    ("[1, 2]", False, {"result": "[1, 2]"}),
    ("{not json", False, {"result": "{not json"}),
    ("", False, {"result": ""}),
    ('{"code": 404}', True, {"error": {"code": 404}}),
])
def test_function_response_objects(text: str, is_error: bool, expected: dict[str, Any]) -> None:
    body = body_of(chat(Message("user", [TextPart("q")]),
                        Message("assistant", [ToolCallPart("a", "f", "{}")]),
                        Message("tool", [ToolResultPart("a", [TextPart(text)], is_error)])))
    assert body["contents"][2]["parts"][0]["functionResponse"]["response"] == expected


def test_tool_result_images_go_in_function_response_parts() -> None:
    body = body_of(chat(Message("user", [TextPart("q")]),
                        Message("assistant", [ToolCallPart("a", "shot", "{}")]),
                        Message("tool", [ToolResultPart("a", [TextPart("done"),
                                                              ImagePart(PNG)])])))
    assert body["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "shot", "response": {"result": "done"},
        "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}


@pytest.mark.parametrize(("url", "expected"), [
    ("https://x.test/cat.PNG", {"fileData": {"mimeType": "image/png",
                                             "fileUri": "https://x.test/cat.PNG"}}),
    ("https://x.test/a/b.jpeg?sig=1", {"fileData": {"mimeType": "image/jpeg",
                                                    "fileUri": "https://x.test/a/b.jpeg?sig=1"}}),
    ("https://x.test/render", UnsupportedFeature),
    ("https://x.test/doc.pdf", UnsupportedFeature),
    ("ftp://x.test/a.png", UnsupportedFeature),
    ("data:image/png,rawbytes", InvalidRequest),
])
def test_image_urls(url: str, expected: Any) -> None:
    request = chat(Message("user", [ImagePart(url)]))
    if isinstance(expected, dict):
        assert body_of(request)["contents"][0]["parts"] == [expected]
    else:
        with pytest.raises(expected) as info:
            body_of(request)
        assert type(info.value) is expected and info.value.param == "messages.0.parts.0"


def test_signature_carriers() -> None:
    body = body_of(chat(Message("user", [TextPart("q")]), Message("assistant", [
        ThinkingPart("", SIG_A), TextPart("answer"), ThinkingPart("", SIG_B),
        ThinkingPart("", None, redacted="opaque-anthropic-data")])))
    assert body["contents"][1]["parts"] == [
        {"text": "answer", "thoughtSignature": SIG_A},
        {"text": "", "thoughtSignature": SIG_B}]


def test_structured_output_and_thinking() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}},
              "required": ["n"], "additionalProperties": False}
    body = body_of(chat(Message("user", [TextPart("q")]),
                        response_format=ResponseFormat("json_schema", "out", schema, True),
                        thinking=ThinkingConfig(budget_tokens=2048)))
    assert body["generationConfig"] == {
        "responseMimeType": "application/json", "responseJsonSchema": schema,
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048}}
    loose = body_of(chat(Message("user", [TextPart("q")]),
                         response_format=ResponseFormat("json_object"),
                         thinking=ThinkingConfig(effort="low")))
    assert loose["generationConfig"] == {
        "responseMimeType": "application/json",
        "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "LOW"}}
    off = body_of(chat(Message("user", [TextPart("q")]), thinking=ThinkingConfig(False),
                       response_format=ResponseFormat("text")))
    assert off["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0}}


@pytest.mark.parametrize(("choice", "strict", "expected"), [
    (None, None, None),
    (None, True, {"mode": "VALIDATED"}),
    (ToolChoice("auto"), True, {"mode": "VALIDATED"}),
    (ToolChoice("none"), None, {"mode": "NONE"}),
    (ToolChoice("required"), True, {"mode": "ANY"}),
    (ToolChoice("tool", "weather"), None, {"mode": "ANY",
                                           "allowedFunctionNames": ["weather"]}),
])
def test_tool_choice(choice: ToolChoice | None, strict: bool | None,
                     expected: dict[str, Any] | None) -> None:
    tool = ToolDefinition("weather", None, {"type": "object"}, strict=strict)
    body = body_of(chat(Message("user", [TextPart("q")]), tools=[tool], tool_choice=choice))
    assert body.get("toolConfig") == (None if expected is None
                                      else {"functionCallingConfig": expected})
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "weather", "parametersJsonSchema": {"type": "object"}}]}]


def test_turns_merge_and_empty_messages_vanish() -> None:
    body = body_of(chat(Message("user", [TextPart("a")]), Message("user", [TextPart("b")]),
                        Message("assistant", []), Message("user", [TextPart("")]),
                        Message("assistant", [TextPart("c")])))
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
                                {"role": "model", "parts": [{"text": "c"}]}]


@pytest.mark.parametrize(("request_", "error", "param"), [
    (chat(Message("user", [TextPart("q")]), tools=[WEATHER], parallel_tool_calls=False),
     UnsupportedFeature, "parallel_tool_calls"),
    (chat(Message("user", [TextPart("q")]), tool_choice=ToolChoice("required")),
     InvalidRequest, "tool_choice"),
    (chat(Message("user", [TextPart("q")]), tools=[WEATHER],
          tool_choice=ToolChoice("tool", "nope")), InvalidRequest, "tool_choice"),
    (chat(Message("system", [TextPart("only instructions")])), InvalidRequest, "messages"),
    (chat(Message("system", [ImagePart(PNG)]), Message("user", [TextPart("q")])),
     UnsupportedFeature, "messages.0"),
    (chat(Message("user", [TextPart("q")]),
          Message("assistant", [ToolCallPart("a", "f", "[1]")])), InvalidRequest,
     "messages.1.parts.0"),
    (chat(Message("user", [ToolCallPart("a", "f", "{}")])), InvalidRequest,
     "messages.0.parts.0"),
    (chat(Message("user", [TextPart("q")]), response_format=ResponseFormat("json_schema")),
     InvalidRequest, "response_format"),
])
def test_inexpressible_requests(request_: ChatRequest, error: type[Exception],
                                param: str) -> None:
    with pytest.raises(error) as info:
        DIALECT.build_request(request_, TARGET)
    assert type(info.value) is error and getattr(info.value, "param", None) == param


def test_parallel_tool_calls_false_without_tools_is_harmless() -> None:
    body = body_of(chat(Message("user", [TextPart("q")]), parallel_tool_calls=False))
    assert body == {"contents": [{"role": "user", "parts": [{"text": "q"}]}]}


def test_our_own_inbound_side_reads_what_we_send() -> None:
    request = chat(
        Message("system", [TextPart("sys")]),
        Message("user", [TextPart("q"), ImagePart(PNG)]),
        Message("assistant", [ThinkingPart("t", SIG_A), ToolCallPart("gemini_9", "weather",
                                                                     '{"city":"Oslo"}')]),
        Message("tool", [ToolResultPart("gemini_9", [TextPart("cold")])]),
        tools=[WEATHER], tool_choice=ToolChoice("tool", "weather"), max_tokens=9,
        response_format=ResponseFormat("json_schema", schema={"type": "object"}),
        thinking=ThinkingConfig(budget_tokens=64))
    back = DIALECT.decode_request(orjson.loads(DIALECT.build_request(request, TARGET).body),
                                  model="gemini-2.5-flash")
    assert back.messages == [
        Message("system", [TextPart("sys")]),
        Message("user", [TextPart("q"), ImagePart(PNG)]),
        Message("assistant", [ThinkingPart("t", SIG_A),
                              ToolCallPart("9", "weather", '{"city":"Oslo"}')]),
        Message("tool", [ToolResultPart("9", [TextPart("cold")], name="weather")]),
    ]
    assert (back.tools, back.tool_choice, back.max_tokens, back.thinking) == (
        [WEATHER], ToolChoice("tool", "weather"), 9, ThinkingConfig(budget_tokens=64))
    assert back.response_format == ResponseFormat("json_schema", schema={"type": "object"})
