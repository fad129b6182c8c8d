"""`MemoryRateLimiter`: the in-process rate and concurrency limiter, the embedded default.

Correct under asyncio concurrency because no method awaits between reading a counter and
writing it: each call runs to completion on the event loop before another can start. It is
not thread-safe; one instance belongs to one event loop (one process, one replica).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from turnout.resilience.clock import Clock
from turnout.state import gcra
from turnout.state.limits import Admission, Denied, Lease, Limit, check_lease, check_limits


class MemoryRateLimiter:
    """GCRA rate limits and leased concurrency slots in this process's memory.

    Keys whose bucket is full again, and concurrency keys with no live lease, hold nothing
    and are dropped by `prune`: run it periodically (as `sweep` for budgets) so memory
    follows the keys in use, not every key ever seen.
    """

    __slots__ = ("_clock", "_ids", "_leases", "_tats")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}
        """Concurrency key -> lease id -> expiry."""
        self._ids = itertools.count(1)

    async def acquire(self, limits: Sequence[Limit], now: float | None = None) -> Admission:
        check_limits(limits)
        at = self._clock.monotonic() if now is None else now
        stored = self._tats
        tats: list[float] = []
        for limit in limits:
            tat = stored.get(limit.key, at)
            tats.append(at if at > tat else tat)  # max(tat, at)
        admission, news = gcra.decide(limits, tats, at)
        if news is not None:
            for limit, tat in zip(limits, news, strict=True):
                stored[limit.key] = tat
        return admission

    async def enter(self, key: str, limit: int, lease_s: float,
                    now: float | None = None) -> Lease | Denied:
        check_lease(key, limit, lease_s)
        at = self._clock.monotonic() if now is None else now
        held = self._live(key, at)
        if len(held) >= limit:
            return Denied(key, limit, len(held), min(held.values()) - at)
        lease = Lease(key, str(next(self._ids)), at + lease_s)
        held[lease.lease_id] = lease.expires_at
        self._leases[key] = held
        return lease

    async def leave(self, lease: Lease) -> None:
        held = self._leases.get(lease.key)
        if held is not None:
            held.pop(lease.lease_id, None)
            if not held:
                del self._leases[lease.key]

    def prune(self, now: float | None = None) -> int:
        """Drop keys that hold nothing any more; returns how many."""
        at = self._clock.monotonic() if now is None else now
        idle = [key for key, tat in self._tats.items() if tat <= at]
        for key in idle:
            del self._tats[key]
        empty = [key for key in list(self._leases) if not self._live(key, at)]
        for key in empty:
            self._leases.pop(key, None)
        return len(idle) + len(empty)

    def _live(self, key: str, at: float) -> dict[str, float]:
        """The key's unexpired leases (expired ones are dropped on the way)."""
        held = self._leases.get(key)
        if held is None:
            return {}
        for lease_id in [i for i, expiry in held.items() if expiry <= at]:
            del held[lease_id]
        return held
