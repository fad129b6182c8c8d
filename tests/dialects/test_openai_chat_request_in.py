"""Inbound: Chat Completions request bodies (as the OpenAI SDK types define them) into the
canonical request, and every invalid input answered with the right error and `param`."""

from __future__ import annotations

from typing import Any

import pytest
from _openai_shapes import check_shape
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)

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
from turnout.dialects.openai_chat import DIALECT

PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}


def decode(body: dict[str, Any]) -> ChatRequest:
    # Every valid fixture is first checked against the SDK's own request types, so the
    # fixtures are what a real client sends, not what our decoder happens to accept.
    tp = CompletionCreateParamsStreaming if body.get("stream") else \
        CompletionCreateParamsNonStreaming
    check_shape(body, tp)
    return DIALECT.decode_request(body)


def test_minimal_request() -> None:
    request = decode({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
    assert request.model == "gpt-4o-mini"
    assert request.messages == [Message("user", [TextPart("Hi")])]
    assert not request.stream and request.max_tokens is None and request.tools == []


def test_system_and_developer_are_both_system_and_names_are_kept() -> None:
    request = decode({"model": "m", "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hi", "name": "alice"},
    ]})
    assert [m.role for m in request.messages] == ["system", "system", "user"]
    assert request.system_text() == "Be terse.\n\nAnswer in French."
    assert request.messages[2].name == "alice"


def test_multimodal_user_message() -> None:
    request = decode({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg",
                                            "detail": "high"}},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]}]})
    assert request.messages[0].parts == [
        TextPart("What is in these images?"),
        ImagePart("https://example.com/cat.jpg", "high"),
        ImagePart(PNG, None),
    ]


def test_tools_and_a_full_tool_round_trip_conversation() -> None:
    request = decode({
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2",
             "content": [{"type": "text", "text": "21"}, {"type": "text", "text": "C"}]},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather", "parameters": WEATHER_PARAMS,
            "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": True,
    })
    assert request.tools == [ToolDefinition("get_weather", "Current weather", WEATHER_PARAMS,
                                            True)]
    assert request.tool_choice == ToolChoice("tool", "get_weather")
    assert request.parallel_tool_calls is True
    assistant = request.messages[1]
    assert assistant.parts == [ToolCallPart("call_1", "get_weather", '{"city":"Paris"}'),
                               ToolCallPart("call_2", "get_weather", '{"city":"Rome"}')]
    assert request.messages[2] == Message(
        "tool", [ToolResultPart("call_1", [TextPart("18C")], name="get_weather")])
    result = request.messages[3].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.text() == "21C" and result.name == "get_weather"


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_strings(choice: str) -> None:
    request = decode({"model": "m", "messages": [{"role": "user", "content": "x"}],
                      "tools": [{"type": "function", "function": {"name": "f"}}],
                      "tool_choice": choice})
    assert request.tool_choice == ToolChoice(choice)  # type: ignore[arg-type]
    # A tool without parameters gets the canonical empty object schema.
    assert request.tools[0].parameters == {"type": "object", "properties": {}}


def test_assistant_reasoning_and_text_history() -> None:
    request = decode({"model": "m", "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]})
    assert request.messages[1].parts == [TextPart("4")]
    # Reasoning echoed back by vLLM/DeepSeek (`reasoning_content`) or OpenRouter
    # (`reasoning`) clients: not in the SDK types, so decoded without the shape check.
    for key in ("reasoning_content", "reasoning"):
        body = {"model": "m", "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", key: "Adding two and two."}]}
        parts = DIALECT.decode_request(body).messages[1].parts
        assert parts == [ThinkingPart("Adding two and two."), TextPart("4")]


def test_sampling_and_output_parameters() -> None:
    request = decode({
        "model": "m", "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.2, "top_p": 0.9, "seed": 7, "user": "u-1", "stop": "END",
        "frequency_penalty": 0.5, "presence_penalty": -0.5, "max_tokens": 50,
        "metadata": {"team": "search"}, "n": 1, "store": False, "service_tier": "auto",
        "logprobs": False, "modalities": ["text"],
    })
    assert (request.temperature, request.top_p, request.seed, request.user) == (0.2, 0.9, 7, "u-1")
    assert request.stop == ["END"]
    assert (request.frequency_penalty, request.presence_penalty) == (0.5, -0.5)
    assert request.max_tokens == 50
    assert request.metadata == {"team": "search"}


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert decode(base | {"max_completion_tokens": 30}).max_tokens == 30
    assert decode(base | {"max_tokens": 10, "max_completion_tokens": 30}).max_tokens == 30


def test_stream_options_and_url_overrides() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True,
            "stream_options": {"include_usage": True}}
    request = decode(body)
    assert request.stream and request.include_usage
    overridden = DIALECT.decode_request(body, model="other", stream=False)
    assert overridden.model == "other" and not overridden.stream


def test_response_formats() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert decode(base | {"response_format": {"type": "text"}}).response_format is None
    assert decode(base | {"response_format": {"type": "json_object"}}).response_format == \
        ResponseFormat("json_object")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = decode(base | {"response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": schema, "strict": True, "description": "The answer"}}})
    assert fmt.response_format == ResponseFormat("json_schema", "answer", schema, True,
                                                 "The answer")


@pytest.mark.parametrize(("effort", "expected"), [
    ("low", ThinkingConfig(effort="low")), ("minimal", ThinkingConfig(effort="minimal")),
    ("high", ThinkingConfig(effort="high")), ("none", ThinkingConfig(enabled=False)),
])
def test_reasoning_effort(effort: str, expected: ThinkingConfig) -> None:
    request = decode({"model": "o3", "messages": [{"role": "user", "content": "x"}],
                      "reasoning_effort": effort})
    assert request.thinking == expected


def test_nulls_count_as_absent() -> None:
    request = DIALECT.decode_request({
        "model": "m", "messages": [{"role": "user", "content": "x"}], "tools": None,
        "temperature": None, "stop": None, "audio": None, "logit_bias": None,
    })
    assert request.tools == [] and request.temperature is None and request.stop == []


# --- invalid input ---------------------------------------------------------------------------

OK_MESSAGES = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": OK_MESSAGES}, "model"),
    ({"model": 5, "messages": OK_MESSAGES}, "model"),
    ({"model": "m"}, "messages"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": "hi"}, "messages"),
    ({"model": "m", "messages": ["hi"]}, "messages[0]"),
    ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [OK_MESSAGES[0], {"role": "robot", "content": "x"}]},
     "messages[1].role"),
    ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
     "messages[0].content[0].type"),
    ({"model": "m", "messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": PNG}}]}]}, "messages[0].content[0].type"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "user", "content": "x", "colour": "red"}]},
     "messages[0].colour"),
    ({"model": "m", "messages": [{"role": "assistant"}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]},
     "messages[0].tool_calls[0].id"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]},
     "messages[0].tool_call_id"),
    ({"model": "m", "messages": OK_MESSAGES, "temperature": 3}, "temperature"),
    ({"model": "m", "messages": OK_MESSAGES, "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": OK_MESSAGES, "top_p": 1.5}, "top_p"),
    ({"model": "m", "messages": OK_MESSAGES, "max_tokens": 0}, "max_tokens"),
    ({"model": "m", "messages": OK_MESSAGES, "max_tokens": "10"}, "max_tokens"),
    ({"model": "m", "messages": OK_MESSAGES, "seed": True}, "seed"),
    ({"model": "m", "messages": OK_MESSAGES, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"model": "m", "messages": OK_MESSAGES, "stop": [1]}, "stop[0]"),
    ({"model": "m", "messages": OK_MESSAGES, "stream": "yes"}, "stream"),
    ({"model": "m", "messages": OK_MESSAGES, "stream_options": {"include_usage": True}},
     "stream_options"),
    ({"model": "m", "messages": OK_MESSAGES, "tools": {"type": "function"}}, "tools"),
    ({"model": "m", "messages": OK_MESSAGES, "tools": [{"type": "function", "function": {
        "name": "has space"}}]}, "tools[0].function.name"),
    ({"model": "m", "messages": OK_MESSAGES, "tools": [{"type": "retrieval"}]},
     "tools[0].type"),
    ({"model": "m", "messages": OK_MESSAGES, "tool_choice": "any"}, "tool_choice"),
    ({"model": "m", "messages": OK_MESSAGES, "tool_choice": {
        "type": "function", "function": {"name": "missing"}}}, "tool_choice.function.name"),
    ({"model": "m", "messages": OK_MESSAGES, "response_format": {"type": "xml"}},
     "response_format.type"),
    ({"model": "m", "messages": OK_MESSAGES, "response_format": {"type": "json_schema"}},
     "response_format.json_schema"),
    ({"model": "m", "messages": OK_MESSAGES, "reasoning_effort": "extreme"},
     "reasoning_effort"),
    ({"model": "m", "messages": OK_MESSAGES, "metadata": {"a": 1}}, "metadata.a"),
    ({"model": "m", "messages": OK_MESSAGES, "parallel_tool_calls": "yes"},
     "parallel_tool_calls"),
])
def test_invalid_requests_name_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request(body)
    assert not isinstance(info.value, UnsupportedFeature)
    assert info.value.param == param
    assert info.value.status == 400 and info.value.origin == "gateway"


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        DIALECT.decode_request(body)


def test_unknown_top_level_key_is_answered_like_openai() -> None:
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request({"model": "m", "messages": OK_MESSAGES, "foo": 1})
    assert info.value.message == "Unrecognized request argument supplied: foo"
    assert info.value.param == "foo"


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"store": True}, "store"),
    ({"service_tier": "flex"}, "service_tier"),
    ({"reasoning_effort": "xhigh"}, "reasoning_effort"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"tools": [{"type": "custom", "custom": {"name": "f"}}]}, "tools[0].type"),
    ({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-1"}}]}]}, "messages[0].content[0].type"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
])
def test_unsupported_features_name_the_param(extra: dict[str, Any], param: str) -> None:
    body = {"model": "m", "messages": OK_MESSAGES} | extra
    check_shape(body, CompletionCreateParamsNonStreaming)  # all valid OpenAI requests
    with pytest.raises(UnsupportedFeature) as info:
        DIALECT.decode_request(body)
    assert info.value.param == param


NESTED = {"type": "object"}
for _ in range(130):
    NESTED = {"not": NESTED}


def _with(**changes: Any) -> dict[str, Any]:
    return {"model": "m", "messages": OK_MESSAGES, **changes}


def _tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return _with(tools=[{"type": "function", "function": {"name": "f", "parameters": parameters}}])


@pytest.mark.parametrize(("body", "param", "words"), [
    (_with(max_tokens=2**64), "max_tokens", "integer above maximum value"),
    (_with(max_tokens=1e20), "max_tokens", "Expected a value <= 2147483647"),
    (_with(max_tokens=2**31), "max_tokens", "integer above maximum value"),
    (_with(max_tokens=5.0), "max_tokens", "got a decimal number"),
    (_with(max_completion_tokens=0.5), "max_completion_tokens", "got a decimal number"),
    (_with(max_completion_tokens=-1e20), "max_completion_tokens", "integer below minimum"),
    (_with(seed=2**63), "seed", "Expected a value <= 9223372036854775807"),
    (_with(seed=-(2**63) - 1), "seed", "Expected a value >= -9223372036854775808"),
    (_with(seed=float("inf")), "seed", "got a decimal number"),
    (_with(n=1e20), "n", "Expected a value <= 128"),
    (_with(n=1.0), "n", "got a decimal number"),
    (_with(top_logprobs=21), "top_logprobs", "Expected a value <= 20"),
    (_with(top_logprobs=-1), "top_logprobs", "integer below minimum"),
    (_with(temperature=float("nan")), "temperature", "between 0 and 2"),
    (_with(frequency_penalty=float("-inf")), "frequency_penalty", "between -2 and 2"),
    (_with(presence_penalty=2**70), "presence_penalty", "between -2 and 2"),
    (_tool({"type": "integer", "maximum": 2**70}), "tools[0].function.parameters.maximum",
     "64-bit range"),
    (_tool({"enum": [{1: "a"}]}), "tools[0].function.parameters.enum[0]", "keys must be"),
    (_tool(NESTED), "tools[0].function.parameters" + ".not" * 128, "nested more than 128"),
    (_with(response_format={"type": "json_schema", "json_schema": {
        "name": "a", "schema": {"default": {1, 2}}}}),
     "response_format.json_schema.schema.default", "set is not a JSON value"),
    (_with(metadata={1: "a"}), "metadata", "string keys"),
])
def test_numbers_and_carried_json_out_of_range(body: dict[str, Any], param: str,
                                               words: str) -> None:
    """Values only a Python caller (`turnout.Client`) can pass, and the JSON-parsed forms of
    integers too large for 64 bits (floats), all answered as 400s naming the field."""
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    assert words in info.value.message, info.value.message


def test_range_bounds_are_accepted() -> None:
    request = DIALECT.decode_request(_with(max_tokens=2**31 - 1, seed=-(2**63), n=1,
                                           temperature=2, top_p=0, frequency_penalty=-2))
    assert (request.max_tokens, request.seed) == (2**31 - 1, -(2**63))
    assert DIALECT.decode_request(_with(seed=2**63 - 1)).seed == 2**63 - 1
    deepest = {"type": "object"}
    for _ in range(127):  # 128 levels: the limit itself
        deepest = {"not": deepest}
    assert DIALECT.decode_request(_tool(deepest)).tools[0].parameters == deepest


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
FUNCTION_TOOL = {"type": "function", "function": {"name": "f"}}


def _assistant(message: dict[str, Any]) -> dict[str, Any]:
    return _with(messages=[*OK_MESSAGES, {"role": "assistant"} | message])


@pytest.mark.parametrize(("body", "param"), [
    (_with(colour=None), "colour"),  # unknown even when null, at every level
    (_with(messages=[{"role": "user", "content": "x", "colour": None}]), "messages[0].colour"),
    (_with(messages=[{"role": "user", "content": "x", "tool_calls": None}]),
     "messages[0].tool_calls"),
    (_with(messages=[{"role": "user", "content": "x", "audio": None}]), "messages[0].audio"),
    (_with(messages=[{"role": "user", "content": [{"type": "text", "text": "x", "lang": "en"}]}]),
     "messages[0].content[0].lang"),
    (_with(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "size": 3}}]}]),
     "messages[0].content[0].image_url.size"),
    (_assistant({"content": [{"type": "text", "text": "x", "colour": 1}]}),
     "messages[1].content[0].colour"),
    (_assistant({"content": [{"type": "refusal", "refusal": "no", "cache_control": {}}]}),
     "messages[1].content[0].cache_control"),
    (_assistant({"content": None, "tool_calls": [CALL | {"index": 0}]}),
     "messages[1].tool_calls[0].index"),
    (_assistant({"content": None, "tool_calls": [
        CALL | {"function": {"name": "f", "arguments": "{}", "parsed": {}}}]}),
     "messages[1].tool_calls[0].function.parsed"),
    (_with(messages=[*OK_MESSAGES, {"role": "tool", "tool_call_id": "c", "content": [
        {"type": "text", "text": "x", "colour": 1}]}]), "messages[1].content[0].colour"),
    (_with(tools=[FUNCTION_TOOL | {"colour": 1}]), "tools[0].colour"),
    (_with(tools=[{"type": "function", "function": {"name": "f", "returns": {}}}]),
     "tools[0].function.returns"),
    (_with(tools=[FUNCTION_TOOL], tool_choice={"type": "function", "function": {"name": "f"},
                                               "colour": 1}), "tool_choice.colour"),
    (_with(tools=[FUNCTION_TOOL], tool_choice={"type": "function", "function": {
        "name": "f", "strict": True}}), "tool_choice.function.strict"),
    (_with(response_format={"type": "json_object", "schema": {}}), "response_format.schema"),
    (_with(response_format={"type": "json_schema", "json_schema": {
        "name": "a", "schema": {}, "colour": 1}}), "response_format.json_schema.colour"),
    (_with(stream=True, stream_options={"include_usage": True, "colour": 1}),
     "stream_options.colour"),
])
def test_unknown_keys_are_refused_at_every_level(body: dict[str, Any], param: str) -> None:
    """One rule for keys wherever they appear: an unknown one is a 400 naming its path."""
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    where, _, key = param.rpartition(".")
    assert info.value.message == (f"Unrecognized parameter '{key}' in '{where}'." if where
                                  else f"Unrecognized request argument supplied: {key}")


def test_documented_and_advisory_keys_pass_at_every_level() -> None:
    hint = {"prompt_cache_breakpoint": {"mode": "explicit"}, "cache_control": None}
    body = _with(
        messages=[
            {"role": "user", "name": "u", "content": [
                {"type": "text", "text": "x"} | hint,
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png",
                                                    "detail": "low"}} | hint]},
            # An assistant message echoed back as the SDK dumps it: documented keys as null.
            {"role": "assistant", "content": "ok", "refusal": None, "annotations": None,
             "audio": None, "function_call": None, "tool_calls": None},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"}],
        tools=[{"type": "function", "function": {"name": "f", "description": "d",
                                                  "parameters": {}, "strict": None}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        response_format={"type": "json_object"}, stream=True,
        stream_options={"include_usage": True, "include_obfuscation": False}, audio=None)
    request = DIALECT.decode_request(body)
    assert [m.role for m in request.messages] == ["user", "assistant", "assistant", "tool"]


def test_documented_assistant_keys_we_cannot_carry_are_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        DIALECT.decode_request(_assistant({"content": "x", "audio": {"id": "audio_1"}}))
    assert info.value.param == "messages[1].audio"
