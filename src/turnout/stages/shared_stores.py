"""The rate limiter and budget ledger the quota stage uses: in-process by default, Redis
when `state.redis` is set, and what happens while Redis is away.

While Redis cannot be reached the gateway keeps serving:

- rate and concurrency limits fall back to this process's own counters (each process then
  admits up to the whole limit: a fleet of N replicas admits up to N times it);
- hard budgets fail closed (a 503 naming the shared state) or, with
  `state.when_down.budgets: local_slice`, each replica spends up to `local_slice` of each
  hard budget on its own; what it spent is added to the shared budgets when Redis is back.

A failed call marks the store degraded; while degraded, Redis is tried again at most once
per `PROBE_S` (requests in between go straight to the fallback instead of each waiting for
a connection timeout), and the first success ends it. `degraded` feeds `/readyz` and the
`turnout_shared_state_degraded` metric.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from turnout.config.runtime import SharedStateSettings
from turnout.resilience.clock import Clock
from turnout.stages.budget_alerts import BudgetAlerts
from turnout.state.budgets import MAX_UNITS, BudgetDenied, BudgetLedger, Charge, Reservation
from turnout.state.errors import StateUnavailable
from turnout.state.limits import Admission, Denied, Lease, Limit, RateLimiter
from turnout.state.memory_budgets import MemoryBudgetLedger
from turnout.state.memory_limits import MemoryRateLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis

_log = logging.getLogger("turnout.state")

PROBE_S = 1.0
"""While degraded, how often a request tries Redis again."""
SWEEP_S = 30.0
"""How often expired reservations are swept and idle in-process counters pruned."""


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation and the ledger that holds it (settle it there)."""

    reservation: Reservation
    local: bool
    """Reserved in this process's slice while Redis was away."""


class SharedStores:
    """The quota stage's stores, with the fallback the config asks for."""

    def __init__(self, settings: SharedStateSettings, clock: Clock,
                 redis: Redis | None = None) -> None:
        self.settings = settings
        self._clock = clock
        self._local_limits = MemoryRateLimiter(clock)
        self._local_budgets = MemoryBudgetLedger(clock)
        self._limits: RateLimiter = self._local_limits
        self._budgets: BudgetLedger = self._local_budgets
        self.shared = redis is not None
        """Whether a shared store (Redis) is configured at all."""
        if redis is not None:
            from turnout.state.redis_budgets import RedisBudgetLedger
            from turnout.state.redis_limits import RedisRateLimiter

            self._limits = RedisRateLimiter(redis, prefix=settings.prefix)
            self._budgets = RedisBudgetLedger(redis, prefix=settings.prefix)
        self.alerts = BudgetAlerts()
        self.degraded = False
        self.degraded_total = 0
        """Times the shared store was lost (a counter for metrics)."""
        self._retry_at = 0.0
        self._unsynced: dict[str, tuple[int, float | None]] = {}
        """Local-slice spend not yet added to the shared budgets: key -> (units, ttl)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._ids = f"{os.urandom(6).hex()}-"
        self._next_id = 0

    # -- rate limits ---------------------------------------------------------------------
    async def acquire(self, limits: Sequence[Limit]) -> Admission:
        if self._use_shared():
            try:
                admission = await self._limits.acquire(limits)
            except StateUnavailable as exc:
                self._lost(exc)
            else:
                self._ok()
                return admission
        return await self._local_limits.acquire(limits)

    async def enter(self, key: str, limit: int, lease_s: float) -> tuple[Lease | Denied, bool]:
        """A concurrency slot, and whether it is held in this process only."""
        if self._use_shared():
            try:
                slot = await self._limits.enter(key, limit, lease_s)
            except StateUnavailable as exc:
                self._lost(exc)
            else:
                self._ok()
                return slot, False
        return await self._local_limits.enter(key, limit, lease_s), True

    async def leave(self, lease: Lease, local: bool) -> None:
        try:
            await (self._local_limits if local else self._limits).leave(lease)
        except StateUnavailable as exc:
            self._lost(exc)  # the lease expires on its own

    # -- budgets -------------------------------------------------------------------------
    def reservation_id(self) -> str:
        self._next_id += 1
        return f"{self._ids}{self._next_id:x}"

    async def reserve(self, charges: Sequence[Charge], lease_s: float
                      ) -> Held | BudgetDenied:
        """Reserve on the shared ledger; while it is away, fail closed (raise
        `StateUnavailable`) or reserve in this process's slice, as configured."""
        self._ensure_sweeper()
        reservation_id = self.reservation_id()
        if self._use_shared():
            try:
                result = await self._budgets.reserve(reservation_id, charges, lease_s)
            except StateUnavailable as exc:
                self._lost(exc)
            else:
                self._ok()
                return result if isinstance(result, BudgetDenied) else Held(result, False)
        if self.shared and self.settings.budgets_when_down != "local_slice":
            raise StateUnavailable(
                "Budgets cannot be checked: the shared state store is unreachable. Retry "
                "shortly.", retry_after=PROBE_S)
        if self.shared:
            slice_ = self.settings.local_slice
            charges = [Charge(c.key, c.limit if c.limit == MAX_UNITS else int(c.limit * slice_),
                              c.amount, c.ttl_s) for c in charges]
        result = await self._local_budgets.reserve(reservation_id, charges, lease_s)
        return result if isinstance(result, BudgetDenied) else Held(result, self.shared)

    async def settle(self, held: Held, actual: dict[str, int]) -> None:
        if held.local:
            await self._local_budgets.settle(held.reservation.reservation_id, actual)
            for charge in held.reservation.charges:
                units, _ = self._unsynced.get(charge.key, (0, None))
                self._unsynced[charge.key] = (units + actual[charge.key], charge.ttl_s)
            return
        try:
            await self._budgets.settle(held.reservation.reservation_id, actual)
        except StateUnavailable as exc:
            # The reservation stays held on the shared ledger and is swept at its full
            # amount: conservative, a hard budget never under-counts.
            self._lost(exc)
            _log.warning("could not settle reservation %s (shared state unreachable); it "
                         "will be swept at its reserved amount",
                         held.reservation.reservation_id)

    async def spent(self, key: str) -> int:
        """A budget's spent units (for alerts), from wherever it is kept."""
        if self._use_shared():
            try:
                usage = await self._budgets.usage(key)
            except StateUnavailable as exc:
                self._lost(exc)
            else:
                return usage.spent
        return (await self._local_budgets.usage(key)).spent

    # -- background work -----------------------------------------------------------------
    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` off the request path, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            await self.sweep()

    async def sweep(self) -> list[str]:
        """Settle expired reservations at their reserved amount; prune idle counters."""
        swept = await self._local_budgets.sweep()
        self._local_limits.prune()
        if self.shared and self._use_shared():
            try:
                swept += await self._budgets.sweep()
            except StateUnavailable as exc:
                self._lost(exc)
        if swept:
            _log.warning("settled %d reservations whose calls never ended (a crashed "
                         "replica?) at their reserved amounts", len(swept))
        return swept

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        tasks = [*self._tasks, *([self._sweeper] if self._sweeper else [])]
        self._sweeper = None
        for task in list(self._tasks):
            try:
                await asyncio.wait_for(asyncio.shield(task), 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- degradation ---------------------------------------------------------------------
    def _use_shared(self) -> bool:
        return self.shared and (not self.degraded or self._clock.monotonic() >= self._retry_at)

    def _lost(self, exc: StateUnavailable) -> None:
        self._retry_at = self._clock.monotonic() + PROBE_S
        if not self.degraded:
            self.degraded = True
            self.degraded_total += 1
            _log.warning("shared state degraded: %s; rate limits are per process and hard "
                         "budgets %s until it is back", exc.message,
                         "use this replica's slice" if self.settings.budgets_when_down ==
                         "local_slice" else "fail closed")

    def _ok(self) -> None:
        if self.degraded:
            self.degraded = False
            _log.info("shared state is back")
            if self._unsynced:
                unsynced, self._unsynced = self._unsynced, {}
                self.spawn(self._resync(unsynced))

    async def _resync(self, unsynced: dict[str, tuple[int, float | None]]) -> None:
        """Add what this replica spent alone to the shared budgets."""
        for key, (units, ttl) in unsynced.items():
            reservation_id = self.reservation_id()
            try:
                result = await self._budgets.reserve(
                    reservation_id, [Charge(key, MAX_UNITS, 0, ttl)], 60.0)
                if isinstance(result, Reservation):
                    await self._budgets.settle(reservation_id, units)
            except StateUnavailable:
                left, _ = self._unsynced.get(key, (0, ttl))
                self._unsynced[key] = (left + units, ttl)
        if unsynced:
            _log.info("added the spend of %d budgets made while the shared state was away",
                      len(unsynced))
