"""Small mappings shared by every direction of the Gemini dialect: finish reasons, usage,
tool-call ids, SSE framing and validation helpers for parsed JSON.

Field names follow the REST (camelCase) form of `generativelanguage.googleapis.com/v1beta`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from turnout.core.errors import InvalidRequest, TurnoutError
from turnout.core.json_data import json_fault
from turnout.core.response import FinishReason, Usage
from turnout.dialects.json_types import INT64_MAX, INT64_MIN

ErrorFactory = Callable[[str, str | None], TurnoutError]
"""Builds the error to raise for a bad wire value: (message, param) -> error. Requests raise
`InvalidRequest`, upstream responses `MalformedResponse(origin="upstream")`."""

# --- finish reasons ---------------------------------------------------------------------------

_CONTENT_FILTER = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})
# The model produced something unusable (a broken or unexpected function call, a missing
# thought signature): the answer did not end normally.
_ERROR = frozenset({
    "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE", "OTHER", "IMAGE_OTHER", "NO_IMAGE",
})


def finish_reason_in(value: str, *, has_tool_calls: bool) -> FinishReason:
    """Canonical finish reason for a wire `finishReason`.

    `STOP` means `tool_calls` when the answer holds function calls (Gemini has no separate
    reason). Gemini never says which stop sequence matched, so `stop_sequence` never comes
    out. Unknown reasons (added after this was written) count as a normal `stop`.
    """
    if value == "MAX_TOKENS":
        return "length"
    if value in _CONTENT_FILTER:
        return "content_filter"
    if value in _ERROR:
        return "error"
    return "tool_calls" if has_tool_calls else "stop"


_FINISH_OUT: dict[FinishReason, str] = {
    "stop": "STOP", "stop_sequence": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS",
    "content_filter": "SAFETY", "error": "OTHER",
}


def finish_reason_out(reason: FinishReason | None) -> str:
    return _FINISH_OUT.get(reason, "STOP") if reason is not None else "STOP"


# --- usage ------------------------------------------------------------------------------------

def usage_in(wire: dict[str, Any]) -> Usage:
    """Canonical usage from `usageMetadata`.

    `promptTokenCount` already includes cached tokens; tokens of tool-use prompts (search
    results and the like) are prompt tokens too. Output counts the answer and the thoughts,
    which Gemini reports apart (`candidatesTokenCount` excludes `thoughtsTokenCount`)."""
    thoughts = _count(wire.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=_count(wire.get("promptTokenCount"))
        + _count(wire.get("toolUsePromptTokenCount")),
        output_tokens=_count(wire.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_count(wire.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def usage_out(usage: Usage) -> dict[str, Any]:
    """`usageMetadata` for canonical usage (zero optional counts are left out, like Gemini)."""
    wire: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        wire["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        wire["thoughtsTokenCount"] = usage.reasoning_tokens
    return wire


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# --- tool-call ids ----------------------------------------------------------------------------

ISSUED_ID_PREFIX = "gemini_"
"""Canonical ids of function calls whose id Gemini itself issued: `gemini_<wire id>`.

Gemini (the Developer API) often omits `functionCall.id`, and several API surfaces reject an
`id` they did not issue (`Unknown name "id" at ...function_call`), while newer models expect
the ids they did issue to come back on `functionResponse`. So an outbound request carries an
`id` only for calls Gemini issued, recognised by this prefix; synthesised ids
(`call_<response id>_<n>`) and other providers' ids (`call_...`, `toolu_...`) are left out
and Gemini pairs calls and responses by name and order, as it documents."""


def issued_id_in(wire_id: str) -> str:
    """Canonical id for an id Gemini issued."""
    return ISSUED_ID_PREFIX + wire_id


def issued_id_out(canonical_id: str) -> str | None:
    """The id to send upstream for a canonical tool-call id, or None to send none."""
    if canonical_id.startswith(ISSUED_ID_PREFIX) and len(canonical_id) > len(ISSUED_ID_PREFIX):
        return canonical_id[len(ISSUED_ID_PREFIX):]
    return None


def verbatim_id(canonical_id: str) -> str | None:
    """Ids sent by our own Gemini server side: every canonical id, unchanged."""
    return canonical_id


# --- SSE --------------------------------------------------------------------------------------

def sse(payload: dict[str, Any]) -> bytes:
    """One SSE event the way Gemini frames it (`alt=sse`): a data line and a CRLF blank line."""
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


# --- validation of parsed JSON ------------------------------------------------------------------

def invalid_request(message: str, param: str | None) -> TurnoutError:
    return InvalidRequest(message, param=param)


def obj(value: Any, param: str, err: ErrorFactory = invalid_request) -> dict[str, Any]:
    """A JSON object whose keys are data (`args`, `response`, JSON Schemas): kept as is."""
    if not isinstance(value, dict):
        raise err(f"`{param}` must be an object", param)
    return value


_SNAKE = re.compile(r"_([a-z0-9])")


def message(value: Any, param: str, err: ErrorFactory = invalid_request) -> dict[str, Any]:
    """A JSON object that is a proto message, with field names in lowerCamelCase.

    proto3 JSON parsers accept both the lowerCamelCase and the original snake_case name of a
    field, and clients rely on it (the `google-genai` SDK sends `parameters_json_schema`,
    `thinking_budget`), so snake_case names are normalised here, one level at a time; data
    objects below a message (`args`, schemas' `properties` maps) are never renamed."""
    fields = obj(value, param, err)
    if not any("_" in key for key in fields):
        return fields
    out: dict[str, Any] = {}
    for key, item in fields.items():
        name = key if key.startswith(("@", "$")) else _SNAKE.sub(lambda m: m[1].upper(), key)
        if name in out:
            raise err(f"field `{name}` is given twice", f"{param}.{name}" if param else name)
        out[name] = item
    return out


def arr(value: Any, param: str, err: ErrorFactory = invalid_request) -> list[Any]:
    if not isinstance(value, list):
        raise err(f"`{param}` must be an array", param)
    return value


def string(value: Any, param: str, err: ErrorFactory = invalid_request) -> str:
    if not isinstance(value, str):
        raise err(f"`{param}` must be a string", param)
    return value


_DECIMAL = re.compile(r"-?[0-9]{1,20}")
"""An int64 written as a JSON string, as proto3 JSON allows (longer digit runs are out of
range anyway, and never reach `int()`, which refuses more than 4300 digits)."""


def integer(value: Any, param: str, err: ErrorFactory = invalid_request, *,
            low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """A proto3 JSON integer within [low, high] (int64 unless the field is narrower): a JSON
    number without a fractional part (`5`, `5.0`, `1e3`, which Google's parsers accept for
    integer fields) or a decimal string (`"5"`)."""
    number: int | float
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    elif isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()):
        raise err(f"`{param}` must be an integer", param)
    else:
        number = value
    if not low <= number <= high:
        raise err(f"`{param}` must be between {low} and {high}, got {value}", param)
    return int(number)


def number(value: Any, param: str, low: float, high: float,
           err: ErrorFactory = invalid_request) -> float:
    """A JSON number within [low, high] (which refuses nan and infinities too)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise err(f"`{param}` must be a number", param)
    if not low <= value <= high:
        raise err(f"`{param}` must be between {low:g} and {high:g}, got {value}", param)
    return float(value)


def data(value: Any, param: str, err: ErrorFactory = invalid_request) -> dict[str, Any]:
    """A JSON object carried on unchanged (a JSON Schema, function-call arguments or
    results): it must encode again for any upstream (see `json_fault`)."""
    fields = obj(value, param, err)
    fault = json_fault(fields)
    if fault is not None:
        where = ".".join([param, *map(str, fault[0])])
        raise err(f"`{where}`: {fault[1]}", where)
    return fields


def boolean(value: Any, param: str, err: ErrorFactory = invalid_request) -> bool:
    if not isinstance(value, bool):
        raise err(f"`{param}` must be a boolean", param)
    return value


def only_keys(
    value: dict[str, Any], allowed: Iterable[str], param: str,
    err: ErrorFactory = invalid_request,
) -> None:
    """Reject unknown keys the way Gemini does (`Unknown name "x" at ...`)."""
    allowed_set = set(allowed)
    for key in value:
        if key not in allowed_set:
            raise unknown_field(param, key, err)


def unknown_field(param: str, key: str, err: ErrorFactory = invalid_request) -> TurnoutError:
    """A field Gemini does not document, wherever it appears: refused naming its path, as
    Gemini does. (Carrying such extras through to a Gemini upstream would be decided here,
    in one place.)"""
    where = f"{param}.{key}" if param else key
    return err(f"unknown field `{where}`", where)
