"""Shared helpers for validating parsed JSON request bodies."""

from __future__ import annotations

from dataclasses import dataclass
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



@dataclass(frozen=True, slots=True)
class Keys:
    """The keys one kind of request object may hold, as its API documents them."""

    read: frozenset[str]
    """Keys the decoder reads."""
    advisory: frozenset[str] = frozenset()
    """Documented keys that never change the answer (cache hints, citations): accepted and
    ignored."""
    unsupported: frozenset[str] = frozenset()
    """Documented keys the canonical model cannot carry: refused by name unless null."""
    allowed: frozenset[str] = frozenset()
    """`read` and `advisory` together (filled in by `keys`)."""


def keys(read: str, advisory: str = "", unsupported: str = "") -> Keys:
    """A `Keys` from space-separated names."""
    r, a, u = (frozenset(names.split()) for names in (read, advisory, unsupported))
    return Keys(r, a, u, r | a)


def first_stray(obj: dict[str, Any], spec: Keys) -> tuple[str, bool] | None:
    """The first key of `obj` that `spec` does not let through, and whether it is a
    documented (unsupported) one rather than an unknown one; None when all pass. Each
    dialect turns the answer into its own errors, in its one `check_keys`."""
    if spec.allowed >= obj.keys():  # the common case, in one C-level comparison
        return None
    for key, value in obj.items():
        if key in spec.allowed or (key in spec.unsupported and value is None):
            continue
        return key, key in spec.unsupported
    return None
