"""What travels with one call through the engine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from turnout.core.errors import Attempt


def new_request_id() -> str:
    """A random request id (96 bits; cheaper than uuid4)."""
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
