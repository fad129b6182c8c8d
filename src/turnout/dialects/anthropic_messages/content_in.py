"""Inbound `messages`: Anthropic turns and content blocks into canonical messages and parts.

Anthropic puts `tool_result` blocks inside a `user` turn; canonically they form a `tool`
message, so such a turn is split into a `tool` message (results, in order) followed by a
`user` message for the remaining blocks.

Every block, image source and message is checked with the dialect's one rule for keys
(`wire.check_keys`): the keys a block documents are read, or accepted and ignored when they
never change the answer (`cache_control`, a provider-side cost hint; `citations`, which only
point into documents, themselves unsupported; `caller`, which says who called a tool);
documented keys we cannot carry are refused by name; any other key is a 400 naming its path.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import UnsupportedFeature
from turnout.core.parts import ImagePart, Part, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import Message
from turnout.dialects.anthropic_messages.wire import (
    check_keys,
    invalid,
    join,
    need_data,
    need_list,
    need_object,
    need_str,
)
from turnout.dialects.json_types import keys, type_name

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""The image types the Messages API accepts."""

# Real Anthropic block types this gateway cannot carry through the canonical model.
UNSUPPORTED_BLOCKS = frozenset({
    "document", "search_result", "server_tool_use", "web_search_tool_result",
    "web_fetch_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "tool_search_tool_result", "container_upload",
    "mcp_tool_use", "mcp_tool_result", "tool_reference", "compaction",
})

_RESULT_BLOCKS = frozenset({"text", "image"})
_MESSAGE_KEYS = keys("role content")
BLOCK_KEYS = {
    "text": keys("type text", advisory="cache_control citations"),
    "image": keys("type source", advisory="cache_control", unsupported="transformations"),
    "tool_use": keys("type id name input", advisory="cache_control caller",
                     unsupported="toolset_name"),
    "tool_result": keys("type tool_use_id content is_error", advisory="cache_control",
                        unsupported="toolset_name"),
    "thinking": keys("type thinking signature"),
    "redacted_thinking": keys("type data"),
}
"""The keys of each content block type this dialect reads (system blocks included)."""
_SOURCE_KEYS = {"base64": keys("type media_type data"), "url": keys("type url")}
_ROLE_BLOCKS = {
    "user": frozenset({"text", "image", "tool_result"}),
    "assistant": frozenset({"text", "image", "tool_use", "thinking", "redacted_thinking"}),
}


def decode_messages(raw: Any) -> list[Message]:
    """Canonical messages for the `messages` array (non-empty, roles `user`/`assistant`)."""
    items = need_list(raw, "messages")
    if not items:
        raise invalid("messages", "at least one message is required")
    tool_names: dict[str, str] = {}
    out: list[Message] = []
    for i, item in enumerate(items):
        path = f"messages.{i}"
        turn = need_object(item, path)
        check_keys(turn, path, _MESSAGE_KEYS)
        role = turn.get("role")
        if role not in _ROLE_BLOCKS:
            raise invalid(join(path, "role"), f"expected 'user' or 'assistant', got {role!r}")
        if "content" not in turn:
            raise invalid(join(path, "content"), "Field required")
        parts = _decode_content(turn["content"], join(path, "content"), role, tool_names)
        if role == "assistant":
            out.append(Message("assistant", parts))
            continue
        results: list[Part] = [p for p in parts if isinstance(p, ToolResultPart)]
        rest: list[Part] = [p for p in parts if not isinstance(p, ToolResultPart)]
        if results:
            out.append(Message("tool", results))
        if rest or not results:
            out.append(Message("user", rest))
    return out


def _decode_content(
    content: Any, path: str, role: str, tool_names: dict[str, str]
) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list):
        raise invalid(path, f"expected a string or an array of content blocks, "
                            f"got {type_name(content)}")
    parts: list[Part] = []
    for j, raw in enumerate(content):
        block_path = join(path, j)
        block = need_object(raw, block_path)
        kind = _block_type(block, block_path, _ROLE_BLOCKS[role], f"{role} messages")
        part = _decode_block(kind, block, block_path, tool_names)
        if isinstance(part, ToolCallPart):
            tool_names[part.id] = part.name
        parts.append(part)
    return parts


def _block_type(block: dict[str, Any], path: str, allowed: frozenset[str], where: str) -> str:
    kind = block.get("type")
    type_path = join(path, "type")
    if not isinstance(kind, str):
        raise invalid(type_path, "Field required" if kind is None else
                      f"expected a string, got {type_name(kind)}")
    if kind in UNSUPPORTED_BLOCKS:
        raise UnsupportedFeature(
            f"{type_path}: '{kind}' content blocks are not supported by this gateway",
            param=type_path)
    if kind not in allowed:
        known = kind in _ROLE_BLOCKS["user"] | _ROLE_BLOCKS["assistant"]
        reason = (f"'{kind}' blocks are not allowed in {where}" if known
                  else f"Input tag '{kind}' does not match any known content block type")
        raise invalid(type_path, reason)
    check_keys(block, path, BLOCK_KEYS[kind])
    return kind


def _decode_block(
    kind: str, block: dict[str, Any], path: str, tool_names: dict[str, str]
) -> Part:
    if kind == "text":
        return TextPart(need_str(block, "text", path))
    if kind == "image":
        return decode_image(block, path)
    if kind == "tool_use":
        if "input" not in block:
            raise invalid(join(path, "input"), "Field required")
        tool_input = need_data(block["input"], join(path, "input"))
        return ToolCallPart(need_str(block, "id", path), need_str(block, "name", path),
                            orjson.dumps(tool_input).decode())
    if kind == "tool_result":
        return _decode_tool_result(block, path, tool_names)
    if kind == "thinking":
        return ThinkingPart(need_str(block, "thinking", path), need_str(block, "signature", path))
    # redacted_thinking: the opaque data must round-trip unchanged.
    return ThinkingPart("", None, need_str(block, "data", path))


def decode_image(block: dict[str, Any], path: str) -> ImagePart:
    """An image block as a canonical image: base64 sources become data URLs."""
    source_path = join(path, "source")
    source = need_object(block.get("source"), source_path)
    kind = source.get("type")
    if kind in _SOURCE_KEYS:
        check_keys(source, source_path, _SOURCE_KEYS[kind])
    if kind == "base64":
        media_type = need_str(source, "media_type", source_path)
        if media_type not in IMAGE_MEDIA_TYPES:
            raise invalid(join(source_path, "media_type"),
                          f"expected one of {', '.join(sorted(IMAGE_MEDIA_TYPES))}, "
                          f"got {media_type!r}")
        return ImagePart(f"data:{media_type};base64,{need_str(source, 'data', source_path)}")
    if kind == "url":
        return ImagePart(need_str(source, "url", source_path))
    if kind == "file":
        raise UnsupportedFeature(f"{source_path}.type: file image sources (Files API) are not "
                                 "supported by this gateway", param=join(source_path, "type"))
    raise invalid(join(source_path, "type"), f"expected 'base64' or 'url', got {kind!r}")


def _decode_tool_result(
    block: dict[str, Any], path: str, tool_names: dict[str, str]
) -> ToolResultPart:
    call_id = need_str(block, "tool_use_id", path)
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise invalid(join(path, "is_error"), f"expected a boolean, got {type_name(is_error)}")
    content = block.get("content")
    parts: list[TextPart | ImagePart] = []
    content_path = join(path, "content")
    if isinstance(content, str):
        parts.append(TextPart(content))
    elif isinstance(content, list):
        for k, raw in enumerate(content):
            item_path = join(content_path, k)
            item = need_object(raw, item_path)
            kind = _block_type(item, item_path, _RESULT_BLOCKS, "tool_result content")
            parts.append(TextPart(need_str(item, "text", item_path)) if kind == "text"
                         else decode_image(item, item_path))
    elif content is not None:
        raise invalid(content_path, f"expected a string or an array of content blocks, "
                                    f"got {type_name(content)}")
    return ToolResultPart(call_id, parts, is_error, tool_names.get(call_id))
