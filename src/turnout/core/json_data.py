"""Limits on JSON data carried through unchanged (tool schemas, tool-call arguments).

Such data is decoded from one wire format and encoded into another, and the encoder
(orjson) refuses some values its parser never produces but a Python caller may: integers
beyond 64 bits, non-string keys, non-JSON types. It also refuses nesting beyond 254 levels,
which parsed data reaches easily (orjson parses up to 1024 levels) once an outbound body
wraps it in a few levels of its own. Dialects check carried data with `json_fault` when they
decode it, so a bad value is a 400 naming its field instead of a crash while encoding.
(Non-finite floats are not faults: the encoder writes them as `null`.)
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 128
"""The deepest nesting a carried value may have: well inside the encoder's limit, whatever
envelope an outbound body puts around it (a handful of levels)."""

_ENCODER_DEPTH = 254
"""The deepest nesting orjson encodes."""

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
"""The integers the JSON encoder can write (int64 and uint64)."""

Path = tuple[str | int, ...]
"""Object keys and array indexes from the checked value down to the bad item."""


def json_fault(value: Any) -> tuple[Path, str] | None:
    """Where `value` holds something that cannot be carried on as JSON, and why; None when
    it is fine."""
    # The encoder itself is the fast check (a walk in Python costs ~25x more): wrapped so
    # that its own depth limit falls right after MAX_DEPTH. Only a failure is walked.
    wrapped = value
    for _ in range(_ENCODER_DEPTH - MAX_DEPTH):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except TypeError as exc:
        return _fault(value, MAX_DEPTH) or ((), str(exc))
    return None


def _fault(value: Any, room: int) -> tuple[Path, str] | None:
    if isinstance(value, str | bool | float) or value is None:
        return None
    if isinstance(value, int):
        return None if INT_MIN <= value <= INT_MAX else ((), "integer out of the 64-bit range")
    if not isinstance(value, dict | list | tuple):
        return (), f"a {type(value).__name__} is not a JSON value"
    if room == 0:
        return (), f"nested more than {MAX_DEPTH} levels deep"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(value, dict) and not isinstance(key, str):
            return (), "object keys must be strings"
        found = _fault(item, room - 1)
        if found is not None:
            return (key, *found[0]), found[1]
    return None
