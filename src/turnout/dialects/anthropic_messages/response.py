"""Non-stream responses: canonical `ChatResponse` <-> Anthropic `Message` objects."""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import MalformedResponse
from turnout.core.parts import Part, TextPart, ThinkingPart, ToolCallPart
from turnout.core.response import ChatResponse
from turnout.dialects.anthropic_messages.errors import error_from_wire, parse_error_payload
from turnout.dialects.anthropic_messages.wire import (
    finish_reason_in,
    malformed,
    message_id,
    stop_reason_out,
    upstream_str,
    usage_in,
    usage_out,
)


def encode_response(response: ChatResponse) -> dict[str, Any]:
    """An Anthropic `Message` object for a canonical response (inbound direction)."""
    reason = stop_reason_out(response.finish_reason)
    return {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": [b for b in (encode_part(p) for p in response.parts) if b is not None],
        "stop_reason": reason,
        "stop_sequence": response.stop_sequence if reason == "stop_sequence" else None,
        "usage": usage_out(response.usage),
    }


def encode_part(part: Part) -> dict[str, Any] | None:
    """The content block for an answer part (None for parts an answer never carries)."""
    if isinstance(part, TextPart):
        # Skip empty text: a client echoing this content back would be rejected by Anthropic.
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name,
                "input": tool_input(part)}
    if isinstance(part, ThinkingPart):
        if part.redacted is not None:
            return {"type": "redacted_thinking", "data": part.redacted}
        return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
    return None  # images and tool results are never part of an assistant answer


def tool_input(part: ToolCallPart) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic sends; invalid JSON came upstream."""
    try:
        return part.arguments_object()
    except ValueError as exc:
        raise MalformedResponse(str(exc), origin="upstream") from exc


def decode_response(body: bytes) -> ChatResponse:
    """A canonical response from an Anthropic `Message` body (outbound direction)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise malformed("body is not a JSON object")
    if payload.get("type") == "error":
        kind, message = parse_error_payload(payload)
        raise error_from_wire(kind, message or "Anthropic returned an error")
    if payload.get("type") != "message":
        raise malformed(f"type must be 'message', got {payload.get('type')!r}")
    content = payload.get("content")
    usage = payload.get("usage")
    if not isinstance(content, list) or not isinstance(usage, dict):
        raise malformed("message needs a content array and a usage object")
    parts: list[Part] = []
    skipped: list[str] = []
    for block in content:
        part = decode_block(block)
        if part is None:
            skipped.append(str(block.get("type")))
        else:
            parts.append(part)
    stop_sequence = payload.get("stop_sequence")
    response = ChatResponse(
        id=upstream_str(payload, "id", "message"),
        model=upstream_str(payload, "model", "message"),
        parts=parts,
        finish_reason=finish_reason_in(payload.get("stop_reason")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        usage=usage_in(usage),
    )
    if skipped:
        # Blocks of server tools we never request; recorded, never passed off as content.
        response.provider_details["anthropic"] = {"skipped_blocks": skipped}
    return response


def decode_block(block: Any) -> Part | None:
    """The canonical part for a response content block; None for types we do not model."""
    if not isinstance(block, dict):
        raise malformed("content blocks must be objects")
    kind = block.get("type")
    if kind == "text":
        return TextPart(upstream_str(block, "text", "text block"))
    if kind == "tool_use":
        arguments = block.get("input")
        if not isinstance(arguments, dict):
            raise malformed("tool_use.input must be an object")
        return ToolCallPart(upstream_str(block, "id", "tool_use"),
                            upstream_str(block, "name", "tool_use"),
                            orjson.dumps(arguments).decode())
    if kind == "thinking":
        signature = block.get("signature")
        return ThinkingPart(upstream_str(block, "thinking", "thinking block"),
                            signature if isinstance(signature, str) and signature else None)
    if kind == "redacted_thinking":
        return ThinkingPart("", None, upstream_str(block, "data", "redacted_thinking block"))
    return None
