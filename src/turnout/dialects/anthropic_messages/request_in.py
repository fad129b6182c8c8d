"""Inbound: an Anthropic Messages request body (as the `anthropic` SDK sends it) into a
canonical `ChatRequest`.

One rule for keys at every level, top level and nested objects alike (`wire.check_keys`):
documented keys that never change the answer are accepted and ignored (`service_tier`, as
we route ourselves; `cache_control` wherever Anthropic documents it, a cost hint;
`thinking.display`); documented features the canonical model cannot carry raise
`UnsupportedFeature` unless null; any other key raises `InvalidRequest` naming its path. Integer
fields take JSON integers only, token counts at most 2^31-1; carried JSON (tool schemas,
`tool_use` inputs) must encode again (see `turnout.core.json_data`).
"""

from __future__ import annotations

from typing import Any, Literal

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import Part, TextPart
from turnout.core.request import ChatRequest, Message, ThinkingConfig, ToolChoice, ToolDefinition
from turnout.dialects.anthropic_messages.content_in import BLOCK_KEYS, decode_messages
from turnout.dialects.anthropic_messages.wire import (
    check_keys,
    invalid,
    join,
    need_data,
    need_list,
    need_object,
    need_str,
)
from turnout.dialects.json_types import INT32_MAX, keys, type_name

_TOP_KEYS = keys(
    "model max_tokens messages system stop_sequences temperature top_p top_k stream "
    "metadata thinking tools tool_choice",
    advisory="service_tier cache_control",
    unsupported="output_config container mcp_servers context_management inference_geo speed "
                "diagnostics")
_TOOL_KEYS = keys("name description input_schema strict type", advisory="cache_control",
                  unsupported="allowed_callers defer_loading eager_input_streaming "
                              "input_examples")
_TOOL_CHOICE_KEYS = {"auto": keys("type disable_parallel_tool_use"),
                     "any": keys("type disable_parallel_tool_use"),
                     "tool": keys("type name disable_parallel_tool_use"),
                     "none": keys("type")}
# `display` only chooses whether thinking is summarised for the client: ignored.
_THINKING_KEYS = {"enabled": keys("type budget_tokens", advisory="display"),
                  "adaptive": keys("type", advisory="display"),
                  "disabled": keys("type")}
_METADATA_KEYS = keys("user_id")

_TOOL_CHOICE_MODES: dict[str, Literal["auto", "none", "required", "tool"]] = {
    "auto": "auto", "any": "required", "tool": "tool", "none": "none",
}

MIN_THINKING_BUDGET = 1024
"""Anthropic's smallest accepted `thinking.budget_tokens`."""


def decode_request(
    body: Any, *, model: str | None = None, stream: bool | None = None
) -> ChatRequest:
    """Validate an Anthropic Messages body into a `ChatRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {type_name(body)}")
    check_keys(body, "", _TOP_KEYS)
    if model is None:
        model = need_str(body, "model", "")
    if "max_tokens" not in body:
        raise invalid("max_tokens", "Field required")
    max_tokens = _integer(body["max_tokens"], "max_tokens", 1, "a positive integer")
    if stream is None:
        stream = _optional_bool(body, "stream") or False
    tool_choice, parallel = _tool_choice(body.get("tool_choice"))
    return ChatRequest(
        model=model,
        messages=_system(body.get("system")) + decode_messages(body.get("messages")),
        tools=_tools(body.get("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=max_tokens,
        temperature=_unit_number(body, "temperature"),
        top_p=_unit_number(body, "top_p"),
        top_k=_top_k(body.get("top_k")),
        stop=_stop_sequences(body.get("stop_sequences")),
        user=_user(body.get("metadata")),
        stream=stream,
        # Anthropic streams always report usage, so its clients always get it.
        include_usage=stream,
        thinking=_thinking(body.get("thinking")),
    )


def _integer(value: Any, path: str, low: int, what: str, high: int = INT32_MAX) -> int:
    """An integer in [low, high] (`what` names the range). Only JSON integers: Anthropic's
    API takes `5.0` for no integer field, and integers too large for 64 bits, which the JSON
    parser turns into floats, are refused by the same rule."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(path, f"expected {what} (at most {high}), got {value!r}")
    return value


def _optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(key, f"expected a boolean, got {type_name(value)}")
    return value


def _unit_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(key, f"expected a number, got {type_name(value)}")
    if not 0.0 <= value <= 1.0:
        raise invalid(key, f"must be between 0 and 1, got {value}")
    return float(value)


def _top_k(value: Any) -> int | None:
    return None if value is None else _integer(value, "top_k", 0, "a non-negative integer")


def _system(value: Any) -> list[Message]:
    if value is None:
        return []
    if isinstance(value, str):
        return [Message("system", [TextPart(value)])] if value else []
    blocks = need_list(value, "system")
    parts: list[Part] = []
    for i, raw in enumerate(blocks):
        path = f"system.{i}"
        block = need_object(raw, path)
        if block.get("type") != "text":
            raise invalid(join(path, "type"),
                          f"system blocks must be 'text', got {block.get('type')!r}")
        check_keys(block, path, BLOCK_KEYS["text"])
        parts.append(TextPart(need_str(block, "text", path)))
    return [Message("system", parts)] if parts else []


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    items = need_list(value, "stop_sequences")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise invalid(f"stop_sequences.{i}", f"expected a string, got {type_name(item)}")
    return list(items)


def _user(value: Any) -> str | None:
    if value is None:
        return None
    metadata = need_object(value, "metadata")
    check_keys(metadata, "metadata", _METADATA_KEYS)
    user_id = metadata.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise invalid("metadata.user_id", f"expected a string, got {type_name(user_id)}")
    return user_id


def _tools(value: Any) -> list[ToolDefinition]:
    if value is None:
        return []
    tools: list[ToolDefinition] = []
    for i, raw in enumerate(need_list(value, "tools")):
        path = f"tools.{i}"
        tool = need_object(raw, path)
        kind = tool.get("type")
        if kind is not None and kind != "custom":
            raise UnsupportedFeature(
                f"{path}.type: server tool {kind!r} is not supported; only custom tools "
                "(name, description, input_schema) are", param=join(path, "type"))
        check_keys(tool, path, _TOOL_KEYS)
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid(join(path, "description"),
                          f"expected a string, got {type_name(description)}")
        if "input_schema" not in tool:
            raise invalid(join(path, "input_schema"), "Field required")
        schema = need_data(tool["input_schema"], join(path, "input_schema"))
        strict = tool.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise invalid(join(path, "strict"), f"expected a boolean, got {type_name(strict)}")
        tools.append(ToolDefinition(need_str(tool, "name", path), description, schema, strict))
    return tools


def _tool_choice(value: Any) -> tuple[ToolChoice | None, bool | None]:
    """(tool choice, parallel_tool_calls): `disable_parallel_tool_use` lives in tool_choice."""
    if value is None:
        return None, None
    choice = need_object(value, "tool_choice")
    kind = choice.get("type")
    if kind not in _TOOL_CHOICE_MODES:
        raise invalid("tool_choice.type",
                      f"expected 'auto', 'any', 'tool' or 'none', got {kind!r}")
    check_keys(choice, "tool_choice", _TOOL_CHOICE_KEYS[kind])
    name = need_str(choice, "name", "tool_choice") if kind == "tool" else None
    disable = _optional_bool(choice, "disable_parallel_tool_use")
    return ToolChoice(_TOOL_CHOICE_MODES[kind], name), (False if disable else None)


def _thinking(value: Any) -> ThinkingConfig | None:
    if value is None:
        return None
    thinking = need_object(value, "thinking")
    kind = thinking.get("type")
    if kind in _THINKING_KEYS:
        check_keys(thinking, "thinking", _THINKING_KEYS[kind])
    if kind == "disabled":
        return None
    if kind == "adaptive":
        # The model decides how much to think: enabled, with no budget or effort set.
        return ThinkingConfig(enabled=True)
    if kind != "enabled":
        raise invalid("thinking.type",
                      f"expected 'enabled', 'adaptive' or 'disabled', got {kind!r}")
    budget = _integer(thinking.get("budget_tokens"), "thinking.budget_tokens",
                      MIN_THINKING_BUDGET, f"an integer >= {MIN_THINKING_BUDGET}")
    return ThinkingConfig(enabled=True, budget_tokens=budget)
