"""Small mappings shared by every direction of the Anthropic Messages dialect: stop reasons,
usage, ids, SSE framing and validation helpers."""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import InvalidRequest, MalformedResponse, UnsupportedFeature
from turnout.core.json_data import json_fault
from turnout.core.response import FinishReason, Usage
from turnout.dialects.json_types import Keys, first_stray, type_name

ANTHROPIC_VERSION = "2023-06-01"
"""The `anthropic-version` header sent upstream; the wire shapes here follow it."""

STOP_REASON_IN: dict[str, FinishReason] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # A paused server-tool turn ended normally from our side: nothing was truncated.
    "pause_turn": "stop",
    # Output stopped because the context window filled up: truncated like `max_tokens`.
    "model_context_window_exceeded": "length",
}

STOP_REASON_OUT: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    # Anthropic has no "error" stop reason; a response that reached the client ended.
    "error": "end_turn",
}


def finish_reason_in(value: Any) -> FinishReason:
    """Canonical finish reason for a wire `stop_reason` (unknown or null -> `stop`)."""
    if isinstance(value, str):
        return STOP_REASON_IN.get(value, "stop")
    return "stop"


def stop_reason_out(reason: FinishReason | None) -> str:
    return STOP_REASON_OUT.get(reason, "end_turn") if reason is not None else "end_turn"


def usage_in(wire: dict[str, Any]) -> Usage:
    """Canonical usage from a wire `usage` object.

    Anthropic's `input_tokens` excludes cache reads and writes; canonical input counts every
    prompt token, so the three are summed."""
    read = _count(wire.get("cache_read_input_tokens"))
    created = _count(wire.get("cache_creation_input_tokens"))
    details = wire.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=_count(wire.get("input_tokens")) + read + created,
        output_tokens=_count(wire.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=created,
        reasoning_tokens=thinking,
    )


def usage_out(usage: Usage) -> dict[str, Any]:
    """The wire `usage` object for canonical usage (inverse of `usage_in`)."""
    wire: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
    if usage.reasoning_tokens:
        wire["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return wire


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def message_id(canonical_id: str) -> str:
    """An id in Anthropic's `msg_...` shape; canonical ids from other upstreams are prefixed."""
    return canonical_id if canonical_id.startswith("msg_") else f"msg_{canonical_id}"


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One SSE frame: Anthropic names every event and repeats the name in `data.type`."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


# --- validation helpers for inbound request bodies --------------------------------------------

def check_keys(obj: dict[str, Any], path: str, spec: Keys) -> None:
    """The one rule for keys, applied at every level of a request (top level, messages,
    content blocks, image sources, tools, tool choice, thinking, metadata)."""
    stray = first_stray(obj, spec)
    if stray is None:
        return
    key, documented = stray
    if documented:
        raise UnsupportedFeature(f"{join(path, key)}: this parameter is not supported by "
                                 "this gateway", param=join(path, key))
    raise unknown_key(path, key)


def unknown_key(path: str, key: str) -> InvalidRequest:
    """A key the Messages API does not document, wherever it appears: refused naming its
    path, as Anthropic does. (Carrying such extras through to an Anthropic upstream would be
    decided here, in one place.)"""
    return invalid(join(path, key), "Extra inputs are not permitted (unknown parameter)")


def invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def join(path: str, key: str | int) -> str:
    """`messages.1.content` style parameter paths, as Anthropic's own errors use."""
    return f"{path}.{key}" if path else str(key)


def need_str(obj: dict[str, Any], key: str, path: str) -> str:
    """`obj[key]` as a string, or `InvalidRequest` naming `path.key`."""
    value = obj.get(key)
    if not isinstance(value, str):
        what = "Field required" if key not in obj else f"expected a string, got {type_name(value)}"
        raise invalid(join(path, key), what)
    return value


def need_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(path, f"expected an object, got {type_name(value)}")
    return value


def need_data(value: Any, path: str) -> dict[str, Any]:
    """An object carried on unchanged (a JSON Schema, a tool's input): it must encode again
    for any upstream (see `json_fault`)."""
    obj = need_object(value, path)
    fault = json_fault(obj)
    if fault is not None:
        where = path
        for key in fault[0]:
            where = join(where, key)
        raise invalid(where, fault[1])
    return obj


def need_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(path, f"expected an array, got {type_name(value)}")
    return value


# --- validation helpers for upstream bodies -----------------------------------------------------

def malformed(message: str) -> MalformedResponse:
    return MalformedResponse(f"malformed Anthropic response: {message}", origin="upstream")


def upstream_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise malformed(f"{where}.{key} must be a string")
    return value
