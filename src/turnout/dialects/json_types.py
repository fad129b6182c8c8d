"""Shared helpers for validating parsed JSON request bodies."""

from __future__ import annotations

from typing import Any

INT32_MAX = 2**31 - 1
"""The bound on token counts (`max_tokens` and the like): every provider's is far lower,
and a larger value is a mistake to report, not a number to pass on."""

INT32_MIN = -(2**31)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def type_name(value: Any) -> str:
    """The JSON type name of a parsed value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__

