"""Inbound: validate a client's Chat Completions request body into a `ChatRequest`.

Accepted and ignored because they cannot change the answer: `store` when false,
`service_tier` when `auto`/`default`, `stream_options.include_obfuscation`,
`prompt_cache_key`, `safety_identifier` (used as `user` when `user` is absent), and
`logprobs: false`, `logit_bias: {}`, `modalities: ["text"]`, `n: 1`. Everything else
OpenAI knows but the canonical model cannot carry raises `UnsupportedFeature` naming it.

One rule for keys at every level, top level and nested objects alike (`_fields.check_keys`):
documented keys are read (null counting as absent) or, when they never change the answer,
accepted and ignored; documented features we cannot carry are refused by name unless null;
any other key is a 400 naming its path, as OpenAI answers.

Numbers are checked against their ranges here, never left for an upstream to refuse (or for
the encoder to crash on): token limits within 1..2^31-1, `seed` within int64, integer fields
strictly integers (`5.0` is refused, as OpenAI refuses it), and JSON carried on unchanged
(tool parameters, response schemas) encodable again (see `turnout.core.json_data`).
"""

from __future__ import annotations

import re
from typing import Any, Literal, cast

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.request import (
    ChatRequest,
    ResponseFormat,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
)
from turnout.dialects.json_types import INT32_MAX, INT64_MAX, INT64_MIN, keys, type_name
from turnout.dialects.openai_chat._fields import (
    bad_value,
    check_keys,
    opt_bool,
    opt_data,
    opt_int,
    opt_number,
    opt_object,
    opt_str,
    req_list,
    req_object,
    req_str,
    wrong_type,
)
from turnout.dialects.openai_chat.messages_in import decode_messages

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EFFORTS = ("minimal", "low", "medium", "high")

# Top level: known to OpenAI but not expressible here, a non-null value is refused by name.
_TOP_KEYS = keys(
    "model messages tools tool_choice parallel_tool_calls response_format stream "
    "stream_options max_tokens max_completion_tokens stop temperature top_p seed user "
    "frequency_penalty presence_penalty reasoning_effort metadata n store service_tier "
    "prompt_cache_key safety_identifier logprobs top_logprobs logit_bias modalities",
    unsupported="audio prediction web_search_options functions function_call verbosity "
                "moderation prompt_cache_retention prompt_cache_options")
_TOOL_KEYS = keys("type function")
_FUNCTION_KEYS = keys("name description parameters strict")
_TOOL_CHOICE_KEYS = keys("type function")
_NAMED_FUNCTION_KEYS = keys("name")
_FORMAT_KEYS = {"text": keys("type"), "json_object": keys("type"),
                "json_schema": keys("type json_schema")}
_SCHEMA_KEYS = keys("name description schema strict")
# `include_obfuscation` only pads stream events against side channels: ignored.
_STREAM_OPTION_KEYS = keys("include_usage", advisory="include_obfuscation")


def decode_request(
    body: Any, *, model: str | None = None, stream: bool | None = None
) -> ChatRequest:
    """Validate a parsed JSON body. `model`/`stream`, when given, override the body's."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"The request body must be a JSON object, but got {type_name(body)}.", param=None)
    check_keys(body, "", _TOP_KEYS)
    _check_ignored(body)
    request = ChatRequest(
        model=model if model is not None else req_str(body.get("model"), "model"),
        messages=decode_messages(body.get("messages")),
    )
    _sampling(body, request)
    _tools(body, request)
    request.response_format = _response_format(body.get("response_format"))
    body_stream = opt_bool(body.get("stream"), "stream")
    request.stream = stream if stream is not None else bool(body_stream)
    options = opt_object(body.get("stream_options"), "stream_options")
    if options is not None:
        if not (body_stream or request.stream):
            raise InvalidRequest(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options")
        check_keys(options, "stream_options", _STREAM_OPTION_KEYS)
        request.include_usage = bool(
            opt_bool(options.get("include_usage"), "stream_options.include_usage"))
    request.thinking = _reasoning(body.get("reasoning_effort"))
    request.metadata = _metadata(body.get("metadata"))
    return request


def _check_ignored(body: dict[str, Any]) -> None:
    """Parameters accepted only with values that leave the answer unchanged."""
    n = opt_int(body.get("n"), "n", 1, 128)
    if n is not None and n > 1:
        raise UnsupportedFeature("Only n=1 is supported.", param="n")
    if opt_bool(body.get("logprobs"), "logprobs"):
        raise UnsupportedFeature("The 'logprobs' parameter is not supported.", param="logprobs")
    if opt_int(body.get("top_logprobs"), "top_logprobs", 0, 20) is not None:
        raise UnsupportedFeature(
            "The 'top_logprobs' parameter is not supported.", param="top_logprobs")
    if opt_object(body.get("logit_bias"), "logit_bias"):
        raise UnsupportedFeature(
            "The 'logit_bias' parameter is not supported.", param="logit_bias")
    modalities = body.get("modalities")
    if modalities is not None:
        if not isinstance(modalities, list):
            raise wrong_type("modalities", "an array", modalities)
        if any(m != "text" for m in modalities):
            raise UnsupportedFeature("Only the 'text' modality is supported.", param="modalities")
    if opt_bool(body.get("store"), "store"):
        # Storing for evals/distillation happens at OpenAI; a gateway cannot promise it.
        raise UnsupportedFeature("'store: true' is not supported.", param="store")
    tier = opt_str(body.get("service_tier"), "service_tier")
    if tier not in (None, "auto", "default"):
        # Other tiers change price and latency: refusing beats silently serving another tier.
        raise UnsupportedFeature(f"service_tier {tier!r} is not supported.", param="service_tier")
    opt_str(body.get("prompt_cache_key"), "prompt_cache_key")


def _sampling(body: dict[str, Any], request: ChatRequest) -> None:
    max_tokens = opt_int(body.get("max_tokens"), "max_tokens", 1, INT32_MAX)
    max_completion = opt_int(body.get("max_completion_tokens"), "max_completion_tokens",
                             1, INT32_MAX)
    request.max_tokens = max_completion if max_completion is not None else max_tokens
    request.temperature = opt_number(body.get("temperature"), "temperature", 0.0, 2.0)
    request.top_p = opt_number(body.get("top_p"), "top_p", 0.0, 1.0)
    request.frequency_penalty = opt_number(
        body.get("frequency_penalty"), "frequency_penalty", -2.0, 2.0)
    request.presence_penalty = opt_number(
        body.get("presence_penalty"), "presence_penalty", -2.0, 2.0)
    request.seed = opt_int(body.get("seed"), "seed", INT64_MIN, INT64_MAX)
    request.user = opt_str(body.get("user"), "user") or opt_str(
        body.get("safety_identifier"), "safety_identifier")
    request.stop = _stop(body.get("stop"))


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise wrong_type("stop", "a string or an array of strings", value)
    if len(value) > 4:
        raise InvalidRequest(
            f"Invalid 'stop': array too long. Expected an array with maximum length 4, but got "
            f"an array with length {len(value)} instead.", param="stop")
    return [req_str(item, f"stop[{i}]") for i, item in enumerate(value)]


def _tools(body: dict[str, Any], request: ChatRequest) -> None:
    raw = body.get("tools")
    items = [] if raw is None else req_list(raw, "tools")
    request.tools = [_tool(item, f"tools[{i}]") for i, item in enumerate(items)]
    request.tool_choice = _tool_choice(body.get("tool_choice"), {t.name for t in request.tools})
    request.parallel_tool_calls = opt_bool(body.get("parallel_tool_calls"), "parallel_tool_calls")


def _tool(value: Any, param: str) -> ToolDefinition:
    obj = req_object(value, param)
    kind = req_str(obj.get("type"), f"{param}.type")
    if kind == "custom":
        raise UnsupportedFeature("Custom tools are not supported.", param=f"{param}.type")
    if kind != "function":
        raise bad_value(f"{param}.type", kind, "'function'")
    check_keys(obj, param, _TOOL_KEYS)
    function = req_object(obj.get("function"), f"{param}.function")
    check_keys(function, f"{param}.function", _FUNCTION_KEYS)
    name = req_str(function.get("name"), f"{param}.function.name")
    if not _NAME.match(name):
        raise InvalidRequest(
            f"Invalid '{param}.function.name': string does not match pattern "
            "'^[a-zA-Z0-9_-]{1,64}$'.", param=f"{param}.function.name")
    tool = ToolDefinition(
        name, opt_str(function.get("description"), f"{param}.function.description"),
        strict=opt_bool(function.get("strict"), f"{param}.function.strict"))
    parameters = opt_data(function.get("parameters"), f"{param}.function.parameters")
    if parameters is not None:
        tool.parameters = parameters
    return tool


def _tool_choice(value: Any, names: set[str]) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise bad_value("tool_choice", value, "'auto', 'none', 'required'")
        return ToolChoice(cast(Literal["auto", "none", "required"], value))
    obj = req_object(value, "tool_choice")
    kind = obj.get("type")
    if kind in ("allowed_tools", "custom"):
        raise UnsupportedFeature(
            f"tool_choice of type {kind!r} is not supported.", param="tool_choice.type")
    if kind != "function":
        raise bad_value("tool_choice.type", kind, "'function'")
    check_keys(obj, "tool_choice", _TOOL_CHOICE_KEYS)
    function = req_object(obj.get("function"), "tool_choice.function")
    check_keys(function, "tool_choice.function", _NAMED_FUNCTION_KEYS)
    name = req_str(function.get("name"), "tool_choice.function.name")
    if name not in names:
        raise InvalidRequest(
            f"Invalid 'tool_choice': function {name!r} is not among the request's tools.",
            param="tool_choice.function.name")
    return ToolChoice("tool", name)


def _response_format(value: Any) -> ResponseFormat | None:
    obj = opt_object(value, "response_format")
    if obj is None:
        return None
    kind = req_str(obj.get("type"), "response_format.type")
    if kind in _FORMAT_KEYS:
        check_keys(obj, "response_format", _FORMAT_KEYS[kind])
    if kind == "text":
        return None  # the default; nothing to ask of any provider
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise bad_value("response_format.type", kind, "'text', 'json_object', 'json_schema'")
    spec = req_object(obj.get("json_schema"), "response_format.json_schema")
    check_keys(spec, "response_format.json_schema", _SCHEMA_KEYS)
    name = req_str(spec.get("name"), "response_format.json_schema.name")
    if not _NAME.match(name):
        raise InvalidRequest(
            "Invalid 'response_format.json_schema.name': string does not match pattern "
            "'^[a-zA-Z0-9_-]{1,64}$'.", param="response_format.json_schema.name")
    return ResponseFormat(
        "json_schema", name=name,
        schema=opt_data(spec.get("schema"), "response_format.json_schema.schema"),
        strict=opt_bool(spec.get("strict"), "response_format.json_schema.strict"),
        description=opt_str(spec.get("description"), "response_format.json_schema.description"),
    )


def _reasoning(value: Any) -> ThinkingConfig | None:
    effort = opt_str(value, "reasoning_effort")
    if effort is None:
        return None
    if effort == "none":
        return ThinkingConfig(enabled=False)
    if effort in _EFFORTS:
        return ThinkingConfig(effort=cast(Literal["minimal", "low", "medium", "high"], effort))
    if effort in ("xhigh", "max"):
        # The canonical effort scale stops at `high`; serving `high` would be a silent downgrade.
        raise UnsupportedFeature(
            f"reasoning_effort {effort!r} is not supported.", param="reasoning_effort")
    raise bad_value("reasoning_effort", effort, "'none', 'minimal', 'low', 'medium', 'high'")


def _metadata(value: Any) -> dict[str, str]:
    obj = opt_object(value, "metadata")
    if obj is None:
        return {}
    if len(obj) > 16:
        raise InvalidRequest("Invalid 'metadata': at most 16 keys are allowed.", param="metadata")
    for key, item in obj.items():
        if not isinstance(key, str):  # only a Python caller can send one
            raise wrong_type("metadata", "an object with string keys", obj)
        if len(key) > 64:
            raise InvalidRequest(
                "Invalid 'metadata': keys are at most 64 characters.", param="metadata")
        if not isinstance(item, str):
            raise wrong_type(f"metadata.{key}", "a string", item)
        if len(item) > 512:
            raise InvalidRequest(
                "Invalid 'metadata': values are at most 512 characters.", param=f"metadata.{key}")
    return dict(obj)
