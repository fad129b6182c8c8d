"""Outbound `system` and `messages`: canonical messages into Anthropic turns.

Anthropic wants one top-level `system`, alternating `user`/`assistant` turns, and tool results
inside `user` turns ahead of any other block. So canonical `system` messages are hoisted (in
order), `tool` messages become `user` turns, and consecutive turns of the same role merge.
"""

from __future__ import annotations

from typing import Any

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, Part, TextPart, ToolCallPart, ToolResultPart
from turnout.core.request import Message


def encode_system(messages: list[Message]) -> list[dict[str, Any]]:
    """Text blocks for every canonical `system` message, wherever it stood, in order."""
    blocks: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role != "system":
            continue
        for part in message.parts:
            if not isinstance(part, TextPart):
                raise UnsupportedFeature(
                    f"messages.{i}: Anthropic system prompts hold only text, not {part.kind}",
                    param=f"messages.{i}")
            if part.text:  # empty text blocks are rejected by Anthropic
                blocks.append({"type": "text", "text": part.text})
    return blocks


def encode_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Alternating Anthropic turns for the non-system messages."""
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role == "system":
            continue
        path = f"messages.{i}"
        blocks: list[dict[str, Any]] = []
        for part in message.parts:
            block = _block(part, message.role, path)
            if block is not None:
                blocks.append(block)
        if not blocks:
            continue  # Anthropic rejects empty content; an empty turn carries nothing
        role = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest("the request has no non-empty user or assistant message",
                             param="messages")
    for turn in turns:
        if turn["role"] == "user":
            # Anthropic requires tool_result blocks first in their user turn; a merge of a
            # user message followed by tool results would otherwise put text before them.
            content = turn["content"]
            turn["content"] = ([b for b in content if b["type"] == "tool_result"]
                               + [b for b in content if b["type"] != "tool_result"])
    return turns


def _block(part: Part, role: str, path: str) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        # Anthropic rejects empty text blocks ("text content blocks must be non-empty").
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        # `detail` has no Anthropic equivalent; it only tunes OpenAI's image tokenisation.
        return image_block(part, path)
    if isinstance(part, ToolCallPart):
        if role != "assistant":
            raise InvalidRequest(f"{path}: tool calls belong in assistant messages", param=path)
        try:
            arguments = part.arguments_object()
        except ValueError as exc:
            raise InvalidRequest(f"{path}: {exc}", param=path) from exc
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": arguments}
    if isinstance(part, ToolResultPart):
        if role == "assistant":
            raise InvalidRequest(f"{path}: tool results cannot be in assistant messages",
                                 param=path)
        return _tool_result(part, path)
    if role != "assistant":
        raise InvalidRequest(f"{path}: thinking belongs in assistant messages", param=path)
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    if part.signature is None:
        # Anthropic accepts only its own signed thinking; reasoning from another provider
        # cannot be replayed and the API would reject the block, so it is left out.
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _tool_result(part: ToolResultPart, path: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
    content: list[dict[str, Any]] = []
    for item in part.content:
        if isinstance(item, ImagePart):
            content.append(image_block(item, path))
        elif item.text:  # empty text blocks are rejected by Anthropic
            content.append({"type": "text", "text": item.text})
    if content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return block


def image_block(part: ImagePart, path: str) -> dict[str, Any]:
    """An Anthropic image block: data URLs as base64 sources, http(s) URLs as url sources."""
    if part.is_data_url:
        try:
            media_type, data = part.data_url_parts()
        except ValueError as exc:
            raise InvalidRequest(f"{path}: {exc}", param=path) from exc
        return {"type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data}}
    if part.url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    raise InvalidRequest(f"{path}: image URL must be http(s) or a base64 data URL", param=path)
