"""One spend record: a row of `turnout_spend`, and its JSON line in the local journal.

A record holds who called, where the attempt went, how it ended, and the tokens and cost
it was charged; never the prompt or the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson

OUTCOMES = ("ok", "error", "cancelled", "superseded", "not_sent", "interrupted")
"""How an attempt ended: `ok` answered the call; `error` failed (upstream or mid-stream);
`cancelled` was cut (the client left, a hedge won); `superseded` answered but another
attempt's answer was used (a hedge that lost the race, a stream continuation);
`not_sent` never left the gateway; `interrupted` was in flight when the gateway died
(charged at its worst case, see `turnout.spend.journal`)."""

CONVERSATION_ID_CHARS = 200
"""The column's width: longer conversation ids are truncated."""


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One upstream attempt, as stored in `turnout_spend` (field names are column names)."""

    attempt_id: str
    """Unique across calls, processes and restarts: the idempotency key of every write."""
    request_id: str
    tenant_id: str | None
    """None for traffic that no tenant's key authenticated (a gateway key, in-process)."""
    key_id: str | None
    alias: str
    """The model name the client asked for (the route)."""
    provider: str
    deployment: str
    model: str
    """The upstream model."""
    started_at: datetime
    """When the attempt started (UTC)."""
    latency_ms: int
    outcome: str
    """One of `OUTCOMES`."""
    status: int
    """The HTTP status the attempt ended with (499: cancelled, 0: never known)."""
    stream: bool
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_micro_usd: int = 0
    estimated: bool = False
    """Some of the usage was estimated (no usage reported, or an interrupted attempt)."""
    conversation_id: str | None = None

    def row(self) -> dict[str, Any]:
        """The record as column values for an insert (not `dataclasses.asdict`, which
        deep-copies every value: most of a batch write's CPU)."""
        return {name: getattr(self, name) for name in _COLUMNS}

    def to_json(self) -> bytes:
        """One JSON object, no newline (orjson writes the dataclass directly)."""
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, data: bytes | dict[str, Any]) -> SpendRecord:
        """The record `to_json` wrote (unknown keys are ignored). Raises ValueError,
        TypeError or KeyError on a malformed line."""
        values = orjson.loads(data) if isinstance(data, bytes) else data
        if not isinstance(values, dict):
            raise ValueError("a spend record is a JSON object")
        started = values["started_at"]
        if not isinstance(started, str):
            raise ValueError("started_at is an ISO 8601 string")
        known = {name: values[name] for name in cls.__slots__ if name in values}
        known["started_at"] = datetime.fromisoformat(started)
        return cls(**known)


_COLUMNS = tuple(f.name for f in fields(SpendRecord))


def conversation_id(value: object) -> str | None:
    """A client's conversation id as stored: a printable string of at most 200 characters
    (others are cleaned or truncated, never refused); None when there is none."""
    if not isinstance(value, str):
        return None
    if not value.isprintable():
        value = "".join(c for c in value if c.isprintable())
    value = value.strip()[:CONVERSATION_ID_CHARS]
    return value or None
