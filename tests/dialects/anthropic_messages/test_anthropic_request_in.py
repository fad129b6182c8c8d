"""Inbound requests: bodies as the official `anthropic` SDK sends them -> `ChatRequest`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import Message, ThinkingConfig, ToolChoice, ToolDefinition
from turnout.dialects.anthropic_messages import DIALECT

Capture = Callable[..., dict[str, Any]]
PNG = "iVBORw0KGgo="
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}},
           "required": ["city"]}


def test_system_string_and_sampling_fields(capture_sdk_body: Capture) -> None:
    body = capture_sdk_body(
        model="claude-test-1", max_tokens=512, system="Be terse.",
        messages=[{"role": "user", "content": "Hello"}],
        stop_sequences=["END"], metadata={"user_id": "user-7"}, service_tier="auto",
        # The published API takes these; this SDK release dropped them from `create()`.
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40})
    request = DIALECT.decode_request(body)
    assert request.model == "claude-test-1"
    assert request.max_tokens == 512
    assert [(m.role, m.text()) for m in request.messages] == [
        ("system", "Be terse."), ("user", "Hello")]
    assert request.stop == ["END"]
    assert (request.temperature, request.top_p, request.top_k) == (0.2, 0.9, 40)
    assert request.user == "user-7"
    assert request.stream is False and request.include_usage is False
    assert request.response_format is None


def test_system_blocks_keep_block_boundaries_and_ignore_cache_control(
    capture_sdk_body: Capture,
) -> None:
    body = capture_sdk_body(
        model="m", max_tokens=5,
        system=[{"type": "text", "text": "Rule one.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Rule two."}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}])
    system, user = DIALECT.decode_request(body).messages
    assert system.role == "system"
    assert system.parts == [TextPart("Rule one."), TextPart("Rule two.")]
    assert user.parts == [TextPart("Hi")]


def test_multi_turn_tool_round_trip(capture_sdk_body: Capture) -> None:
    body = capture_sdk_body(
        model="m", max_tokens=100,
        tools=[{"name": "weather", "description": "Weather by city", "input_schema": WEATHER}],
        messages=[
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather",
                 "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                 "content": [{"type": "text", "text": "station down"},
                             {"type": "image", "source": {"type": "base64",
                                                          "media_type": "image/png",
                                                          "data": PNG}}]},
                {"type": "text", "text": "Summarise please."}]},
        ])
    request = DIALECT.decode_request(body)
    assert request.tools == [ToolDefinition("weather", "Weather by city", WEATHER, None)]
    roles = [m.role for m in request.messages]
    assert roles == ["user", "assistant", "tool", "user"]
    assistant, tool, user = request.messages[1:]
    assert assistant.parts[0] == TextPart("Checking.")
    calls = assistant.tool_calls()
    assert [(c.id, c.name, c.arguments_object()) for c in calls] == [
        ("toolu_1", "weather", {"city": "Paris"}), ("toolu_2", "weather", {"city": "Oslo"})]
    assert tool.parts == [
        ToolResultPart("toolu_1", [TextPart("18C sunny")], False, "weather"),
        ToolResultPart("toolu_2", [TextPart("station down"),
                                   ImagePart(f"data:image/png;base64,{PNG}")], True, "weather"),
    ]
    assert user.parts == [TextPart("Summarise please.")]


def test_user_turn_of_only_tool_results_yields_no_empty_user_message() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}]}
    (tool,) = DIALECT.decode_request(body).messages
    assert tool.role == "tool"
    assert tool.parts == [ToolResultPart("t1", [], False, None)]


def test_images_base64_and_url(capture_sdk_body: Capture) -> None:
    body = capture_sdk_body(model="m", max_tokens=5, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                     "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "Compare."}]}])
    (user,) = DIALECT.decode_request(body).messages
    assert user.parts == [ImagePart("data:image/jpeg;base64,/9j/4AAQ"),
                          ImagePart("https://example.com/a.png"), TextPart("Compare.")]


def test_thinking_blocks_and_config(capture_sdk_body: Capture) -> None:
    body = capture_sdk_body(
        model="m", max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[
            {"role": "user", "content": "Think."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Hmm.", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Done."}]},
            {"role": "user", "content": "Again."}])
    request = DIALECT.decode_request(body)
    assert request.thinking == ThinkingConfig(enabled=True, budget_tokens=2048)
    assert request.messages[1].parts == [ThinkingPart("Hmm.", "sig=="),
                                         ThinkingPart("", None, "opaque"), TextPart("Done.")]


@pytest.mark.parametrize(("thinking", "expected"), [
    ({"type": "disabled"}, None),
    ({"type": "adaptive"}, ThinkingConfig(enabled=True)),
])
def test_thinking_disabled_and_adaptive(thinking: dict[str, Any],
                                        expected: ThinkingConfig | None) -> None:
    body = {"model": "m", "max_tokens": 5, "thinking": thinking,
            "messages": [{"role": "user", "content": "x"}]}
    assert DIALECT.decode_request(body).thinking == expected


@pytest.mark.parametrize(("wire", "choice", "parallel"), [
    ({"type": "auto"}, ToolChoice("auto"), None),
    ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("required"), False),
    ({"type": "tool", "name": "weather"}, ToolChoice("tool", "weather"), None),
    ({"type": "none"}, ToolChoice("none"), None),
])
def test_tool_choice(capture_sdk_body: Capture, wire: dict[str, Any], choice: ToolChoice,
                     parallel: bool | None) -> None:
    body = capture_sdk_body(
        model="m", max_tokens=5, tool_choice=wire,
        tools=[{"name": "weather", "input_schema": WEATHER, "strict": True}],
        messages=[{"role": "user", "content": "x"}])
    request = DIALECT.decode_request(body)
    assert request.tool_choice == choice
    assert request.parallel_tool_calls is parallel
    assert request.tools[0].strict is True


def test_stream_asks_for_usage_and_url_overrides() -> None:
    body = {"model": "m", "max_tokens": 5, "stream": True,
            "messages": [{"role": "user", "content": "x"}]}
    request = DIALECT.decode_request(body)
    assert request.stream is True and request.include_usage is True
    overridden = DIALECT.decode_request({k: v for k, v in body.items() if k != "model"},
                                        model="from-url", stream=False)
    assert overridden.model == "from-url"
    assert overridden.stream is False and overridden.include_usage is False


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "max_tokens": 10,
                            "messages": [{"role": "user", "content": "hi"}]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens",
     "Field required"),
    (_body(max_tokens=0), "max_tokens", "positive integer"),
    (_body(max_tokens="10"), "max_tokens", "positive integer"),
    (_body(max_tokens=True), "max_tokens", "positive integer"),
    (_body(model=None), "model", "Field required"),
    (_body(model=3), "model", "expected a string"),
    (_body(messages=[]), "messages", "at least one message"),
    (_body(messages={"role": "user"}), "messages", "expected an array"),
    (_body(messages=[{"role": "system", "content": "x"}]), "messages.0.role",
     "'user' or 'assistant'"),
    (_body(messages=[{"role": "user"}]), "messages.0.content", "Field required"),
    (_body(messages=[{"role": "user", "content": 5}]), "messages.0.content",
     "string or an array"),
    (_body(messages=_user({"type": "foo"})), "messages.0.content.0.type",
     "Input tag 'foo'"),
    (_body(messages=_user({"text": "no type"})), "messages.0.content.0.type",
     "Field required"),
    (_body(messages=_user({"type": "text"})), "messages.0.content.0.text", "Field required"),
    (_body(messages=_user({"type": "tool_use", "id": "t", "name": "n", "input": {}})),
     "messages.0.content.0.type", "not allowed in user messages"),
    (_body(messages=[{"role": "assistant", "content": [
        {"type": "tool_result", "tool_use_id": "t"}]}]),
     "messages.0.content.0.type", "not allowed in assistant messages"),
    (_body(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": "{}"}]}]),
     "messages.0.content.0.input", "expected an object"),
    (_body(messages=_user({"type": "image", "source": {"type": "base64",
                                                        "media_type": "image/bmp",
                                                        "data": "x"}})),
     "messages.0.content.0.source.media_type", "image/png"),
    (_body(messages=_user({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"})),
     "messages.0.content.0.is_error", "boolean"),
    (_body(messages=_user({"type": "tool_result", "tool_use_id": "t",
                           "content": [{"type": "tool_use"}]})),
     "messages.0.content.0.content.0.type", "not allowed in tool_result content"),
    (_body(bogus=1), "bogus", "unknown parameter"),
    (_body(temperature="hot"), "temperature", "expected a number"),
    (_body(temperature=1.5), "temperature", "between 0 and 1"),
    (_body(top_k=-1), "top_k", "non-negative"),
    (_body(stream="yes"), "stream", "boolean"),
    (_body(stop_sequences=["a", 1]), "stop_sequences.1", "expected a string"),
    (_body(metadata={"user_id": "u", "tier": "x"}), "metadata.tier", "Extra inputs"),
    (_body(system=[{"type": "image"}]), "system.0.type", "must be 'text'"),
    (_body(system=5), "system", "expected an array"),
    (_body(tools=[{"name": "t"}]), "tools.0.input_schema", "Field required"),
    (_body(tool_choice={"type": "tool"}), "tool_choice.name", "Field required"),
    (_body(tool_choice={"type": "sometimes"}), "tool_choice.type", "'auto', 'any'"),
    (_body(thinking={"type": "enabled", "budget_tokens": 100}), "thinking.budget_tokens",
     ">= 1024"),
    (_body(thinking={"type": "on"}), "thinking.type", "'enabled'"),
])
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str,
                                         words: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    assert words in info.value.message
    assert info.value.message.startswith(param)


@pytest.mark.parametrize(("body", "param"), [
    (_body(messages=_user({"type": "document", "source": {}})), "messages.0.content.0.type"),
    (_body(messages=_user({"type": "search_result"})), "messages.0.content.0.type"),
    (_body(messages=[{"role": "assistant", "content": [{"type": "server_tool_use"}]}]),
     "messages.0.content.0.type"),
    (_body(messages=_user({"type": "image", "source": {"type": "file", "file_id": "f"}})),
     "messages.0.content.0.source.type"),
    (_body(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
    (_body(tools=[{"name": "t", "input_schema": {}, "defer_loading": True}]),
     "tools.0.defer_loading"),
    (_body(output_config={"effort": "low"}), "output_config"),
    (_body(mcp_servers=[]), "mcp_servers"),
])
def test_real_but_unsupported_features(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        DIALECT.decode_request(body)
    assert info.value.param == param


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        DIALECT.decode_request([{"model": "m"}])


def test_tool_use_input_becomes_json_arguments() -> None:
    body = _body(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": {"a": [1, "é"]}}]}])
    (call,) = DIALECT.decode_request(body).messages[0].parts
    assert isinstance(call, ToolCallPart)
    assert call.arguments_object() == {"a": [1, "é"]}


def test_registry_hands_out_this_dialect() -> None:
    from turnout.dialects.registry import get_dialect

    assert get_dialect("anthropic_messages") is DIALECT
    assert DIALECT.name == "anthropic_messages"


@pytest.mark.parametrize(("body", "param", "words"), [
    (_body(max_tokens=2**64), "max_tokens", "positive integer (at most 2147483647)"),
    (_body(max_tokens=1e20), "max_tokens", "positive integer"),
    (_body(max_tokens=2**31), "max_tokens", "at most 2147483647"),
    (_body(max_tokens=5.0), "max_tokens", "positive integer"),
    (_body(top_k=2**40), "top_k", "at most 2147483647"),
    (_body(top_k=3.0), "top_k", "non-negative integer"),
    (_body(temperature=float("nan")), "temperature", "between 0 and 1"),
    (_body(top_p=2**70), "top_p", "between 0 and 1"),
    (_body(thinking={"type": "enabled", "budget_tokens": 2**40}), "thinking.budget_tokens",
     "at most 2147483647"),
    (_body(thinking={"type": "enabled", "budget_tokens": 2048.0}), "thinking.budget_tokens",
     "an integer >= 1024"),
    (_body(tools=[{"name": "t", "input_schema": {"type": "integer", "maximum": 2**70}}]),
     "tools.0.input_schema.maximum", "64-bit range"),
    (_body(tools=[{"name": "t", "input_schema": {"enum": [{2: "x"}]}}]),
     "tools.0.input_schema.enum.0", "keys must be strings"),
    (_body(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": {"n": [2**70]}}]}]),
     "messages.0.content.0.input.n.0", "64-bit range"),
])
def test_numbers_and_carried_json_out_of_range(body: dict[str, Any], param: str,
                                               words: str) -> None:
    """Values only a Python caller can pass, and the JSON-parsed forms of integers too large
    for 64 bits (floats): 400s naming the field, never a crash while encoding upstream."""
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    assert info.value.message.startswith(f"{param}: ")
    assert words in info.value.message, info.value.message


def test_integer_bounds_are_accepted() -> None:
    request = DIALECT.decode_request(_body(max_tokens=2**31 - 1, top_k=0, thinking={
        "type": "enabled", "budget_tokens": 2**31 - 1}))
    assert (request.max_tokens, request.top_k) == (2**31 - 1, 0)


def _assistant(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "hi"}, {"role": "assistant", "content": list(blocks)}]


TEXT = {"type": "text", "text": "hi"}
PNG_SOURCE = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}


@pytest.mark.parametrize(("body", "param"), [
    (_body() | {"colour": None}, "colour"),  # unknown even when null, at every level
    (_body(messages=[{"role": "user", "content": "hi", "colour": 1}]), "messages.0.colour"),
    (_body(messages=_user(TEXT | {"colour": 1})), "messages.0.content.0.colour"),
    (_body(messages=_user(TEXT | {"colour": None})), "messages.0.content.0.colour"),
    (_body(messages=_user({"type": "image", "source": PNG_SOURCE, "alt": "x"})),
     "messages.0.content.0.alt"),
    (_body(messages=_user({"type": "image", "source": PNG_SOURCE | {"name": "x.png"}})),
     "messages.0.content.0.source.name"),
    (_body(messages=_user({"type": "image", "source": {"type": "url", "url": "https://x",
                                                        "detail": "high"}})),
     "messages.0.content.0.source.detail"),
    (_body(messages=_assistant(TOOL_USE | {"arguments": "{}"})),
     "messages.1.content.0.arguments"),
    (_body(messages=_user({"type": "tool_result", "tool_use_id": "t", "status": "ok"})),
     "messages.0.content.0.status"),
    (_body(messages=_user({"type": "tool_result", "tool_use_id": "t",
                           "content": [TEXT | {"colour": 1}]})),
     "messages.0.content.0.content.0.colour"),
    (_body(messages=_assistant({"type": "thinking", "thinking": "t", "signature": "s",
                                "cache_control": {"type": "ephemeral"}})),
     "messages.1.content.0.cache_control"),
    (_body(messages=_assistant({"type": "redacted_thinking", "data": "d", "extra": 1})),
     "messages.1.content.0.extra"),
    (_body(system=[TEXT | {"colour": 1}]), "system.0.colour"),
    (_body(tools=[{"name": "t", "input_schema": {}, "colour": 1}]), "tools.0.colour"),
    (_body(tool_choice={"type": "auto", "name": "f"}), "tool_choice.name"),
    (_body(tool_choice={"type": "none", "disable_parallel_tool_use": True}),
     "tool_choice.disable_parallel_tool_use"),
    (_body(thinking={"type": "enabled", "budget_tokens": 2048, "effort": "low"}),
     "thinking.effort"),
    (_body(thinking={"type": "disabled", "budget_tokens": 2048}), "thinking.budget_tokens"),
])
def test_unknown_keys_are_refused_at_every_level(body: dict[str, Any], param: str) -> None:
    """One rule for keys wherever they appear: an unknown one is a 400 naming its path."""
    with pytest.raises(InvalidRequest) as info:
        DIALECT.decode_request(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    assert info.value.message == f"{param}: Extra inputs are not permitted (unknown parameter)"


@pytest.mark.parametrize(("body", "param"), [
    (_body(messages=_user({"type": "image", "source": PNG_SOURCE,
                           "transformations": {"crop": {}}})),
     "messages.0.content.0.transformations"),
    (_body(messages=_assistant(TOOL_USE | {"toolset_name": "mcp"})),
     "messages.1.content.0.toolset_name"),
    (_body(tools=[{"name": "t", "input_schema": {}, "input_examples": [{}]}]),
     "tools.0.input_examples"),
])
def test_documented_keys_we_cannot_carry_are_unsupported(body: dict[str, Any],
                                                         param: str) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        DIALECT.decode_request(body)
    assert info.value.param == param


def test_advisory_keys_are_accepted_and_ignored() -> None:
    cache = {"cache_control": {"type": "ephemeral", "ttl": "5m"}}
    body = _body(
        system=[TEXT | cache | {"citations": None}],
        messages=[
            {"role": "user", "content": [
                TEXT | cache | {"citations": [{"type": "char_location", "cited_text": "x"}]},
                {"type": "image", "source": PNG_SOURCE, "transformations": None} | cache]},
            {"role": "assistant", "content": [
                TOOL_USE | cache | {"caller": {"type": "direct"}, "toolset_name": None}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"} | cache]}],
        tools=[{"name": "f", "input_schema": {"type": "object"}, "defer_loading": None} | cache],
        thinking={"type": "enabled", "budget_tokens": 2048, "display": "omitted"},
        service_tier="auto", cache_control={"type": "ephemeral"}) | {"container": None}
    request = DIALECT.decode_request(body)
    assert request.messages[0] == Message("system", [TextPart("hi")])
    assert [type(p).__name__ for m in request.messages for p in m.parts] == [
        "TextPart", "TextPart", "ImagePart", "ToolCallPart", "ToolResultPart"]
