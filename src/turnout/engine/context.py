"""What travels with one call through the engine."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Literal

from turnout.core.errors import Attempt, TurnoutError
from turnout.tenancy.policy import NO_POLICY, Policy


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


@dataclass(frozen=True, slots=True)
class Identity:
    """A tenant's caller, as authenticated by its virtual key."""

    tenant_id: str
    key_id: str
    aliases: frozenset[str] | None = None
    """The aliases the key may call; None for all."""
    tenant_policy: Policy = NO_POLICY
    """The tenant's limits and budgets (shared by all its keys)."""
    key_policy: Policy = NO_POLICY
    """The key's own limits and budgets."""


@dataclass(slots=True)
class CallContext:
    """Principal, deadline and the attempt log of one client request."""

    request_id: str = field(default_factory=new_request_id)
    principal: str | None = None
    """Who is calling, once authenticated: a gateway key's name, or None in-process."""
    credential: str | None = field(default=None, repr=False)
    """The secret the caller presented (an API key), for the authenticate stage only."""
    caller: Literal["library", "http"] = "library"
    """`http` for requests that came through the gateway. In-process callers own the
    configuration and need no gateway key; HTTP callers always do when keys are set."""
    authenticated: bool = False
    """Set once the pipeline's authenticate hooks have run for this call."""
    identity: Identity | None = None
    """The tenant and key behind the call, when a virtual key authenticated it."""
    timeout_s: float | None = None
    """The client's own overall deadline (may only shorten the route's)."""
    attempts: list[Attempt] = field(default_factory=list)
    abort: TurnoutError | None = None
    """Set by whoever cancels the call on purpose (the gateway's shutdown drain) before
    cancelling it, so that the call is reported with this error, not as the client
    leaving."""
    response_headers: dict[str, str] | None = None
    """Headers a stage wants on the answer, success or error (rate-limit state); the
    gateway sends them, the library leaves them for the caller to read."""
    conversation_id: str | None = None
    """The client's conversation id (the gateway reads `x-turnout-conversation-id`), kept in
    the spend ledger; the request's `metadata.conversation_id` when unset."""
    max_tokens_capped: int | None = None
    """Set when the serving target got a smaller `max_tokens` than the request asked for
    (its declared output limit); the gateway reports it as `x-turnout-max-tokens-capped`."""
