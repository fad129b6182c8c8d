"""Rate limits: the `RateLimiter` protocol and its value types.

A rate limit is checked with GCRA (the generic cell rate algorithm, see `turnout.state.gcra`):
one stored number per key, the "theoretical arrival time", from which the exact wait before
the next admission, the units left and the time to a full bucket all follow. One `acquire`
checks several limits at once, all or nothing: a request over its tenant's requests per
minute must not spend any of its tokens per minute, and the other way round.

A concurrency limit caps how many calls hold a slot at once. Slots are leases that expire,
so a replica that crashes while holding slots gives them back after `lease_s` at the latest.

Times are seconds on the store's own clock (its timebase: an injected `Clock` for the
in-process store; the Redis server's clock, or an injected one, for Redis). Every `now`
parameter is in that timebase and is meant for tests and replays; production leaves it None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Limit:
    """One rate limit to check: `rate` units per `period_s` seconds, `burst` at once, and
    what this request costs (1 for requests per minute; the request's estimated tokens for
    tokens per minute)."""

    key: str
    """The counter's identity, e.g. `tenant:acme:rpm`; one key is one limit."""
    rate: int
    """Units that refill per period."""
    period_s: float
    """The period in seconds (60 for "per minute")."""
    burst: int
    """The most units that may be taken at once from a full bucket (often `rate`)."""
    cost: int = 1
    """Units this request takes."""

    @property
    def interval_s(self) -> float:
        """Seconds for one unit to refill (GCRA's emission interval)."""
        return self.period_s / self.rate


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit's state as `acquire` left it: what the `x-ratelimit-*` headers report."""

    limit: Limit
    remaining: int
    """Units that could be taken right now (after this request, when it was admitted)."""
    reset_after: float
    """Seconds until the bucket is full again."""
    retry_after: float
    """0 when this limit admits the request; otherwise the exact wait before it would, with
    no other traffic. `math.inf` when the cost exceeds the burst: waiting cannot help."""


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of `acquire`: admitted (every limit consumed) or not (none consumed)."""

    allowed: bool
    states: tuple[LimitState, ...]
    """One per limit, in the order given."""
    denied_by: LimitState | None = None
    """When not allowed: the exceeded limit with the longest wait (retrying sooner fails)."""

    @property
    def retry_after(self) -> float:
        """Seconds before retrying can succeed; 0 when admitted."""
        return 0.0 if self.denied_by is None else self.denied_by.retry_after

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True, slots=True)
class Lease:
    """A held concurrency slot; give it back with `leave`."""

    key: str
    lease_id: str
    expires_at: float
    """When the slot frees itself if `leave` is never called (the store's timebase)."""


@dataclass(frozen=True, slots=True)
class Denied:
    """A concurrency limit was full."""

    key: str
    limit: int
    active: int
    """Slots held when the request was refused."""
    retry_after: float
    """Seconds until the earliest lease expires: an upper bound, since a `leave` may free a
    slot sooner."""


class RateLimiter(Protocol):
    """Rate and concurrency limits shared by every caller of one store."""

    async def acquire(self, limits: Sequence[Limit], now: float | None = None) -> Admission:
        """Check every limit and consume all of them, or none: an exceeded limit consumes
        nothing anywhere. Keys must be distinct."""
        ...

    async def enter(self, key: str, limit: int, lease_s: float,
                    now: float | None = None) -> Lease | Denied:
        """Take one of `limit` slots of `key` for at most `lease_s` seconds."""
        ...

    async def leave(self, lease: Lease) -> None:
        """Give a slot back. Leaving twice, or after the lease expired, is harmless."""
        ...


def check_limits(limits: Sequence[Limit]) -> None:
    """Reject malformed limits before they reach a store (same rules for every store)."""
    seen: set[str] = set()
    for limit in limits:  # the common case in one pass; any doubt: the checks one by one
        key, period = limit.key, limit.period_s
        if (not key or key in seen or limit.rate <= 0 or limit.burst <= 0 or limit.cost < 0
                or not 0 < period < math.inf):
            break
        seen.add(key)
    else:
        return
    _explain_limits(limits)


def _explain_limits(limits: Sequence[Limit]) -> None:
    """Raise the first problem of `limits`, in the order the rules are stated."""
    seen: set[str] = set()
    for limit in limits:
        if not limit.key:
            raise ValueError("a rate limit needs a key")
        if limit.key in seen:
            raise ValueError(f"rate limit key {limit.key!r} appears twice in one call")
        seen.add(limit.key)
        if limit.rate <= 0 or limit.burst <= 0 or limit.cost < 0:
            raise ValueError(f"rate limit {limit.key!r}: rate and burst must be positive "
                             "and cost not negative")
        if not (limit.period_s > 0 and math.isfinite(limit.period_s)):
            raise ValueError(f"rate limit {limit.key!r}: period_s must be positive")


def check_lease(key: str, limit: int, lease_s: float) -> None:
    if not key:
        raise ValueError("a concurrency limit needs a key")
    if limit <= 0:
        raise ValueError(f"concurrency limit {key!r} must be positive")
    if not (lease_s > 0 and math.isfinite(lease_s)):
        raise ValueError(f"concurrency lease for {key!r} must be a positive number of seconds")
