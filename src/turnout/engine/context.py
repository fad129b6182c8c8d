"""What travels with one call through the engine."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from turnout.core.errors import Attempt


class RequestIds:
    """Unique request ids without a system call per request: a random per-process prefix and
    a counter (owned by whoever creates it, e.g. the gateway; no module-level state)."""

    __slots__ = ("_next", "_prefix")

    def __init__(self) -> None:
        self._prefix = f"req_{os.urandom(8).hex()}"
        self._next = itertools.count(1).__next__

    def __call__(self) -> str:
        return f"{self._prefix}{self._next():08x}"


def new_request_id() -> str:
    """A random request id (one-off use; hot paths share a `RequestIds`)."""
    return f"req_{os.urandom(12).hex()}"


@dataclass(slots=True)
class CallContext:
    """Principal, deadline and the attempt log of one client request."""

    request_id: str = field(default_factory=new_request_id)
    principal: str | None = None
    """Who is calling: a gateway key's name, or None in-process."""
    timeout_s: float | None = None
    """The client's own overall deadline (may only shorten the route's)."""
    attempts: list[Attempt] = field(default_factory=list)
    max_tokens_capped: int | None = None
    """Set when the serving target got a smaller `max_tokens` than the request asked for
    (its declared output limit); the gateway reports it as `x-turnout-max-tokens-capped`."""
