"""Inbound: Gemini `generateContent` request bodies -> canonical requests."""

from __future__ import annotations

from typing import Any

import pytest
from _gemini_helpers import SIG_A, SIG_B

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import Message, ResponseFormat, ThinkingConfig, ToolChoice
from turnout.dialects.gemini import DIALECT
from turnout.dialects.gemini.schema import openapi_to_json_schema


def decode(body: dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("model", "gemini-2.5-flash")
    return DIALECT.decode_request(body, **kwargs)


def user(text: str = "hi") -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def test_realistic_conversation() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": " Really."}]},
        "contents": [
            {"role": "user", "parts": [
                {"text": "What is in this picture, and the weather in Paris and Rome?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/a.jpg"}},
            ]},
            {"role": "model", "parts": [
                {"text": "Let me think", "thought": True},
                {"text": " about it.", "thought": True, "thoughtSignature": SIG_A},
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}},
                 "thoughtSignature": SIG_B},
                {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "weather", "response": {"result": "sunny"}}},
                {"functionResponse": {"name": "weather",
                                      "response": {"error": "city not found"}}},
                {"text": "Thanks."},
            ]},
        ],
        "tools": [{"functionDeclarations": [{
            "name": "weather", "description": "Weather now",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}},
                           "required": ["city"]}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {
            "temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 256,
            "stopSequences": ["END"], "seed": 7, "presencePenalty": 0.5,
            "frequencyPenalty": -0.5, "candidateCount": 1,
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT",
                            "threshold": "BLOCK_ONLY_HIGH"}],
    }
    request = decode(body, stream=True)
    assert request.model == "gemini-2.5-flash" and request.stream is True
    assert request.messages[0] == Message("system", [TextPart("You are terse."),
                                                     TextPart(" Really.")])
    assert request.messages[1] == Message("user", [
        TextPart("What is in this picture, and the weather in Paris and Rome?"),
        ImagePart("data:image/png;base64,iVBORw0KGgo="), ImagePart("https://x.test/a.jpg")])
    # Thought parts form one run closed by its signature; the function call's signature rides
    # on a carrier right before it; calls without ids get per-request ids.
    assert request.messages[2] == Message("assistant", [
        ThinkingPart("Let me think about it.", SIG_A),
        ThinkingPart("", SIG_B),
        ToolCallPart("call_1_0", "weather", '{"city":"Paris"}'),
        ToolCallPart("call_1_1", "weather", '{"city":"Rome"}'),
    ])
    # Responses without ids answer the oldest open call of the same name, in order.
    assert request.messages[3] == Message("tool", [
        ToolResultPart("call_1_0", [TextPart("sunny")], False, "weather"),
        ToolResultPart("call_1_1", [TextPart("city not found")], True, "weather"),
    ])
    assert request.messages[4] == Message("user", [TextPart("Thanks.")])
    assert len(request.messages) == 5
    assert request.tools[0].name == "weather" and request.tools[0].description == "Weather now"
    assert request.tools[0].parameters == {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert request.tool_choice == ToolChoice("auto")
    assert (request.temperature, request.top_p, request.top_k, request.max_tokens) == (
        0.2, 0.9, 40, 256)
    assert request.stop == ["END"] and request.seed == 7
    assert (request.presence_penalty, request.frequency_penalty) == (0.5, -0.5)
    assert request.thinking == ThinkingConfig(enabled=True, budget_tokens=1024)
    assert request.response_format is None


def test_snake_case_field_names_are_accepted_like_proto_json() -> None:
    # What the google-genai SDK actually sends for some fields.
    request = decode({
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "tools": [{"function_declarations": [{
            "name": "f", "parameters_json_schema": {"type": "object",
                                                    "properties": {"a_b": {"type": "string"}}}}]}],
        "generation_config": {"max_output_tokens": 5,
                              "thinking_config": {"thinking_budget": 0}},
    })
    assert request.system_text() == "sys"
    # Data below a message (a schema's property names) is never renamed.
    assert request.tools[0].parameters["properties"] == {"a_b": {"type": "string"}}
    assert request.max_tokens == 5
    assert request.thinking == ThinkingConfig(enabled=False)


def test_ids_from_the_wire_are_kept_and_pair_explicitly() -> None:
    request = decode({"contents": [
        user(),
        {"role": "model", "parts": [
            {"functionCall": {"id": "a1", "name": "f", "args": {}}},
            {"functionCall": {"id": "a2", "name": "f"}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "a2", "name": "f", "response": {"x": 1}}},
            {"functionResponse": {"id": "a1", "name": "f", "response": {}}}]},
    ]})
    calls = request.messages[1].parts
    assert calls == [ToolCallPart("a1", "f", "{}"), ToolCallPart("a2", "f", "{}")]
    results = request.messages[2].parts
    assert [r.tool_call_id for r in results] == ["a2", "a1"]
    # An object that is not a `result`/`error` wrapper is the result itself, as JSON text.
    assert results[0].content == [TextPart('{"x":1}')]
    assert results[1].content == [TextPart("{}")]


def test_mixed_user_turn_splits_into_tool_and_user_messages_in_order() -> None:
    request = decode({"contents": [
        user("q"),
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
        {"role": "user", "parts": [
            {"text": "before"},
            {"functionResponse": {"name": "f", "response": {"result": "r"}}},
            {"text": "after"}]},
    ]})
    assert [m.role for m in request.messages] == ["user", "assistant", "user", "tool", "user"]


def test_function_response_images_and_error_objects() -> None:
    request = decode({"contents": [
        user(),
        {"role": "model", "parts": [{"functionCall": {"name": "shot", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {
            "name": "shot", "response": {"error": {"code": 3}},
            "parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}}]},
    ]})
    result = request.messages[2].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.is_error is True
    assert result.content == [TextPart('{"code":3}'), ImagePart("data:image/png;base64,AAAA")]


def test_model_and_stream_come_from_the_url() -> None:
    request = DIALECT.decode_request({"contents": [user()]}, model="models/gemini-pro")
    assert request.model == "gemini-pro" and request.stream is False
    assert DIALECT.decode_request({"contents": [user()], "model": "m2"}).model == "m2"
    assert decode({"contents": [{"parts": [{"text": "no role means user"}]}]}).messages[0] \
        .role == "user"


@pytest.mark.parametrize(("config", "expected"), [
    ({"mode": "ANY"}, ToolChoice("required")),
    ({"mode": "ANY", "allowedFunctionNames": ["g"]}, ToolChoice("tool", "g")),
    ({"mode": "ANY", "allowedFunctionNames": ["f", "g"]}, ToolChoice("required")),
    ({"mode": "NONE"}, ToolChoice("none")),
    ({"mode": "VALIDATED"}, ToolChoice("auto")),
    ({}, None),
])
def test_function_calling_modes(config: dict[str, Any], expected: ToolChoice | None) -> None:
    request = decode({
        "contents": [user()],
        "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
        "toolConfig": {"functionCallingConfig": config}})
    assert request.tool_choice == expected
    assert all(t.strict is (True if config.get("mode") == "VALIDATED" else None)
               for t in request.tools)
    assert request.tools[0].parameters == {"type": "object", "properties": {}}


@pytest.mark.parametrize(("config", "expected"), [
    ({"responseMimeType": "application/json"}, ResponseFormat("json_object")),
    ({"responseMimeType": "application/json", "responseJsonSchema": {
        "type": "object", "$defs": {"x": {"type": "string"}}}},
     ResponseFormat("json_schema", schema={"type": "object",
                                           "$defs": {"x": {"type": "string"}}})),
    ({"responseMimeType": "application/json", "responseSchema": {
        "type": "ARRAY", "items": {"type": "INTEGER", "nullable": True}, "minItems": "1"}},
     ResponseFormat("json_schema", schema={"type": "array", "minItems": 1,
                                           "items": {"type": ["integer", "null"]}})),
    ({"responseMimeType": "text/plain"}, None),
])
def test_response_formats(config: dict[str, Any], expected: ResponseFormat | None) -> None:
    request = decode({"contents": [user()], "generationConfig": config})
    assert request.response_format == expected


@pytest.mark.parametrize(("config", "expected"), [
    ({"thinkingBudget": -1}, ThinkingConfig(enabled=True)),
    ({"thinkingBudget": 0, "includeThoughts": False}, ThinkingConfig(enabled=False)),
    ({"thinkingLevel": "LOW"}, ThinkingConfig(effort="low")),
    ({"thinkingLevel": "high"}, ThinkingConfig(effort="high")),
    ({"includeThoughts": True}, ThinkingConfig()),
    ({"includeThoughts": False}, None),
])
def test_thinking_config(config: dict[str, Any], expected: ThinkingConfig | None) -> None:
    request = decode({"contents": [user()], "generationConfig": {"thinkingConfig": config}})
    assert request.thinking == expected


def test_openapi_schema_conversion() -> None:
    schema = {
        "type": "OBJECT", "description": "d", "propertyOrdering": ["b", "a"],
        "properties": {
            "a": {"type": "STRING", "format": "enum", "enum": ["x", "y"], "nullable": True},
            "b": {"anyOf": [{"type": "NUMBER", "minimum": 0}, {"type": "BOOLEAN"}],
                  "example": 3},
            "c": {"nullable": True, "max_length": "4", "type": "TYPE_UNSPECIFIED"},
        },
        "required": ["a"],
    }
    assert openapi_to_json_schema(schema, "p") == {
        "type": "object", "description": "d", "propertyOrdering": ["b", "a"],
        "required": ["a"],
        "properties": {
            "a": {"type": ["string", "null"], "format": "enum", "enum": ["x", "y"]},
            "b": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "boolean"}],
                  "examples": [3]},
            "c": {"anyOf": [{"maxLength": 4}, {"type": "null"}]},
        },
    }
    with pytest.raises(InvalidRequest) as info:
        openapi_to_json_schema({"type": "OBJECT", "additionalProperties": False}, "p")
    assert info.value.param == "p.additionalProperties"


def test_safety_settings_are_validated_then_ignored() -> None:
    request = decode({"contents": [user()], "safetySettings": [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]})
    assert request.messages == [Message("user", [TextPart("hi")])]
    with pytest.raises(InvalidRequest):
        decode({"contents": [user()], "safetySettings": [{"category": "x", "level": 1}]})


TOOL = {"functionDeclarations": [{"name": "f"}]}


@pytest.mark.parametrize(("body", "error", "param"), [
    ({"contents": [user()], "prompt": "x"}, InvalidRequest, "prompt"),
    ({"contents": []}, InvalidRequest, "contents"),
    ({}, InvalidRequest, "contents"),
    ({"contents": "hi"}, InvalidRequest, "contents"),
    ({"contents": [{"role": "function", "parts": [{"text": "x"}]}]}, InvalidRequest,
     "contents.0.role"),
    ({"contents": [{"role": "user", "parts": []}]}, InvalidRequest, "contents.0.parts"),
    ({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {
        "mimeType": "image/png", "data": "AA"}}]}]}, InvalidRequest, "contents.0.parts.0"),
    ({"contents": [{"role": "user", "parts": [{"text": 3}]}]}, InvalidRequest,
     "contents.0.parts.0.text"),
    ({"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f"}}]}]},
     InvalidRequest, "contents.0.parts.0.functionCall"),
    ({"contents": [{"role": "user", "parts": [{"text": "x", "thought": True}]}]},
     InvalidRequest, "contents.0.parts.0.thought"),
    ({"contents": [{"role": "user", "parts": [{"text": "x", "color": 1}]}]}, InvalidRequest,
     "contents.0.parts.0.color"),
    ({"contents": [{"role": "model", "parts": [{"inlineData": {
        "mimeType": "image/png", "data": "AA"}}]}]}, UnsupportedFeature,
     "contents.0.parts.0.inlineData"),
    ({"contents": [{"role": "user", "parts": [{"executableCode": {"code": "1"}}]}]},
     UnsupportedFeature, "contents.0.parts.0.executableCode"),
    ({"contents": [{"role": "user", "parts": [{"inlineData": {
        "mimeType": "application/pdf", "data": "AA"}}]}]}, UnsupportedFeature,
     "contents.0.parts.0.inlineData.mimeType"),
    ({"contents": [{"role": "user", "parts": [{"fileData": {
        "mimeType": "image/png", "fileUri": "gs://b/x.png"}}]}]}, UnsupportedFeature,
     "contents.0.parts.0.fileData.fileUri"),
    ({"contents": [{"role": "user", "parts": [{"functionResponse": {
        "name": "f", "response": {}}}]}]}, InvalidRequest, "contents.0.parts.0.functionResponse"),
    ({"contents": [{"role": "user", "parts": [{"functionResponse": {
        "id": "x", "name": "f", "response": "ok"}}]}]}, InvalidRequest,
     "contents.0.parts.0.functionResponse.response"),
    ({"contents": [user()], "cachedContent": "cachedContents/abc"}, UnsupportedFeature,
     "cachedContent"),
    ({"contents": [user()], "tools": [{"googleSearch": {}}]}, UnsupportedFeature,
     "tools.0.googleSearch"),
    ({"contents": [user()], "tools": [{"functionDeclarations": [{"name": "f", "response": {
        "type": "STRING"}}]}]}, UnsupportedFeature, "tools.0.functionDeclarations.0.response"),
    ({"contents": [user()], "tools": [TOOL, TOOL]}, InvalidRequest, "tools"),
    ({"contents": [user()], "tools": [TOOL], "toolConfig": {"functionCallingConfig": {
        "mode": "AUTO", "allowedFunctionNames": ["f"]}}}, InvalidRequest,
     "toolConfig.functionCallingConfig.allowedFunctionNames"),
    ({"contents": [user()], "tools": [TOOL], "toolConfig": {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["g"]}}}, InvalidRequest,
     "toolConfig.functionCallingConfig.allowedFunctionNames"),
    ({"contents": [user()], "tools": [TOOL], "toolConfig": {"functionCallingConfig": {
        "mode": "SOMETIMES"}}}, InvalidRequest, "toolConfig.functionCallingConfig.mode"),
    ({"contents": [user()], "generationConfig": {"candidateCount": 2}}, UnsupportedFeature,
     "generationConfig.candidateCount"),
    ({"contents": [user()], "generationConfig": {"temperature": "hot"}}, InvalidRequest,
     "generationConfig.temperature"),
    ({"contents": [user()], "generationConfig": {"maxOutputTokens": True}}, InvalidRequest,
     "generationConfig.maxOutputTokens"),
    ({"contents": [user()], "generationConfig": {"mystery": 1}}, InvalidRequest,
     "generationConfig.mystery"),
    ({"contents": [user()], "generationConfig": {"responseLogprobs": True}},
     UnsupportedFeature, "generationConfig.responseLogprobs"),
    ({"contents": [user()], "generationConfig": {"responseModalities": ["IMAGE"]}},
     UnsupportedFeature, "generationConfig.responseModalities"),
    ({"contents": [user()], "generationConfig": {"responseMimeType": "text/x.enum"}},
     UnsupportedFeature, "generationConfig.responseMimeType"),
    ({"contents": [user()], "generationConfig": {"responseJsonSchema": {"type": "object"}}},
     InvalidRequest, "generationConfig.responseMimeType"),
    ({"contents": [user()], "generationConfig": {"thinkingConfig": {
        "thinkingBudget": 10, "thinkingLevel": "LOW"}}}, InvalidRequest,
     "generationConfig.thinkingConfig"),
    ({"contents": [user()], "generationConfig": {"thinkingConfig": {
        "thinkingLevel": "XHIGH"}}}, UnsupportedFeature,
     "generationConfig.thinkingConfig.thinkingLevel"),
    ({"contents": [user()], "generationConfig": {"max_output_tokens": 1,
                                                 "maxOutputTokens": 2}}, InvalidRequest,
     "generationConfig.maxOutputTokens"),
])
def test_bad_requests(body: dict[str, Any], error: type[Exception], param: str) -> None:
    with pytest.raises(error) as info:
        decode(body)
    assert type(info.value) is error
    assert getattr(info.value, "param", None) == param


def test_missing_model_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request({"contents": [user()]})
    assert info.value.param == "model"


def generation(**config: Any) -> dict[str, Any]:
    return {"contents": [user()], "generationConfig": config}


def declared(**declaration: Any) -> dict[str, Any]:
    return {"contents": [user()], "tools": [{"functionDeclarations": [
        {"name": "f", **declaration}]}]}


def model_call(args: Any) -> dict[str, Any]:
    return {"contents": [user(), {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": args}}]}]}


G = "generationConfig."
DECL = "tools.0.functionDeclarations.0."


@pytest.mark.parametrize(("body", "param", "words"), [
    (generation(maxOutputTokens=2**64), G + "maxOutputTokens", "between 1 and 2147483647"),
    (generation(maxOutputTokens=1e20), G + "maxOutputTokens", "between 1 and 2147483647"),
    (generation(maxOutputTokens="99999999999999999999"), G + "maxOutputTokens", "between"),
    (generation(maxOutputTokens="9" * 5000), G + "maxOutputTokens", "must be an integer"),
    (generation(maxOutputTokens="--5"), G + "maxOutputTokens", "must be an integer"),
    (generation(maxOutputTokens="\u00b2"), G + "maxOutputTokens", "must be an integer"),
    (generation(maxOutputTokens=0), G + "maxOutputTokens", "between 1 and"),
    (generation(maxOutputTokens=2.5), G + "maxOutputTokens", "must be an integer"),
    (generation(seed=2**31), G + "seed", "between -2147483648 and 2147483647"),
    (generation(topK=-1), G + "topK", "between 0 and"),
    (generation(candidateCount=1e20), G + "candidateCount", "between"),
    (generation(temperature=2.5), G + "temperature", "between 0 and 2"),
    (generation(temperature=float("nan")), G + "temperature", "between 0 and 2"),
    (generation(topP=1e20), G + "topP", "between 0 and 1"),
    (generation(presencePenalty=-3), G + "presencePenalty", "between -2 and 2"),
    (generation(frequencyPenalty=2**70), G + "frequencyPenalty", "between -2 and 2"),
    (generation(thinkingConfig={"thinkingBudget": 2**40}),
     G + "thinkingConfig.thinkingBudget", "between"),
    (declared(parametersJsonSchema={"type": "integer", "maximum": 2**70}),
     DECL + "parametersJsonSchema.maximum", "64-bit range"),
    (declared(parameters={"type": "ARRAY", "maxItems": "99999999999999999999"}),
     DECL + "parameters.maxItems", "between 0 and"),
    (declared(parameters={"type": "INTEGER", "enum": [{3: "x"}]}),
     DECL + "parameters.enum.0", "keys must be strings"),
    (generation(responseMimeType="application/json",
                responseJsonSchema={"type": "integer", "minimum": -(2**70)}),
     G + "responseJsonSchema.minimum", "64-bit range"),
    (model_call({"n": 2**70}), "contents.1.parts.0.functionCall.args.n", "64-bit range"),
    ({"contents": [user(), {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
                   {"role": "user", "parts": [{"functionResponse": {
                       "name": "f", "response": {"v": {1: 2}}}}]}]},
     "contents.2.parts.0.functionResponse.response.v", "keys must be strings"),
])
def test_numbers_and_carried_json_out_of_range(body: dict[str, Any], param: str,
                                               words: str) -> None:
    """int32 and int64 fields within their proto ranges, numbers within the documented
    ones, and carried JSON that can be encoded again: 400s naming the field."""
    with pytest.raises(InvalidRequest) as info:
        decode(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    assert words in info.value.message, info.value.message


def test_proto_json_integer_forms_are_accepted() -> None:
    """proto3 JSON takes an integer as a number without a fraction or as a decimal string."""
    request = decode(generation(maxOutputTokens=5.0, topK="40", seed=-(2**31),
                                candidateCount=1e0, temperature=2, topP=0))
    assert (request.max_tokens, request.top_k, request.seed) == (5, 40, -(2**31))
    assert type(request.max_tokens) is int
    assert decode(generation(maxOutputTokens=2**31 - 1)).max_tokens == 2**31 - 1


PNG_BLOB = {"mimeType": "image/png", "data": "iVBORw0KGgo="}


@pytest.mark.parametrize(("body", "param"), [
    ({"contents": [{"role": "user", "parts": [{"inlineData": PNG_BLOB | {"size": 3}}]}]},
     "contents.0.parts.0.inlineData.size"),
    ({"contents": [{"role": "user", "parts": [{"fileData": {
        "mimeType": "image/png", "fileUri": "https://x.test/a.png", "etag": "1"}}]}]},
     "contents.0.parts.0.fileData.etag"),
    ({"contents": [{"role": "user", "parts": [{"inlineData": PNG_BLOB, "mediaResolution": {
        "level": "MEDIA_RESOLUTION_LOW", "quality": 1}}]}]},
     "contents.0.parts.0.mediaResolution.quality"),
    ({"contents": [user()], "systemInstruction": {"parts": [{"text": "x", "colour": 1}]}},
     "systemInstruction.parts.0.colour"),
    ({"contents": [user(), {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
                   {"role": "user", "parts": [{"functionResponse": {
                       "name": "f", "response": {}, "parts": [
                           {"inlineData": PNG_BLOB | {"colour": 1}}]}}]}]},
     "contents.2.parts.0.functionResponse.parts.0.inlineData.colour"),
])
def test_unknown_fields_are_refused_at_every_level(body: dict[str, Any], param: str) -> None:
    """One rule for fields wherever they appear: an unknown one is a 400 naming its path."""
    with pytest.raises(InvalidRequest) as info:
        decode(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    assert info.value.message == f"unknown field `{param}`"


def test_documented_fields_pass_in_blobs_and_media_resolution() -> None:
    request = decode({"contents": [{"role": "user", "parts": [
        {"inlineData": PNG_BLOB | {"displayName": "a.png"},
         "mediaResolution": {"level": "MEDIA_RESOLUTION_HIGH"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a.png",
                      "displayName": "a.png"}}]}]})
    assert request.messages[0].parts == [ImagePart("data:image/png;base64,iVBORw0KGgo=", "high"),
                                         ImagePart("https://x.test/a.png")]


@pytest.mark.parametrize(("body", "param"), [
    ({"contents": [user()], "systemInstruction": {"parts": [
        {"inlineData": PNG_BLOB}]}}, "systemInstruction.parts.0.inlineData"),
    ({"contents": [{"role": "user", "parts": [{"inlineData": PNG_BLOB, "mediaResolution": {
        "numTokens": 64}}]}]}, "contents.0.parts.0.mediaResolution.numTokens"),
])
def test_documented_fields_we_cannot_carry_are_unsupported(body: dict[str, Any],
                                                           param: str) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        decode(body)
    assert info.value.param == param
