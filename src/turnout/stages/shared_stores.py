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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from turnout.config.runtime import SharedStateSettings
from turnout.resilience.clock import Clock
from turnout.stages.budget_alerts import BudgetAlerts
from turnout.state.admission import Grant, Slot
from turnout.state.budgets import MAX_UNITS, BudgetDenied, BudgetLedger, Charge, Reservation
from turnout.state.errors import StateUnavailable
from turnout.state.limits import Admission, Denied, Lease, Limit
from turnout.state.memory_budgets import MemoryBudgetLedger
from turnout.state.memory_limits import MemoryRateLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from turnout.state.redis_quota import RedisQuota

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


@dataclass(slots=True)
class Granted:
    """What `SharedStores.admit` took for one call (give it back with `release`), or why
    it refused: on a refusal nothing is held."""

    local: bool
    """Held in this process (no Redis, or Redis away), not in the shared store."""
    admission: Admission | None = None
    """The rate limits' state, for the `x-ratelimit-*` headers (None without limits, or
    when a slot or budget refused first in this process)."""
    leases: list[Lease] = field(default_factory=list)
    held: Held | None = None
    slot_denied: Denied | None = None
    budget_denied: BudgetDenied | None = None

    @property
    def allowed(self) -> bool:
        return (self.slot_denied is None and self.budget_denied is None
                and (self.admission is None or self.admission.allowed))


def _granted(grant: Grant, *, local: bool) -> Granted:
    granted = Granted(local=local, admission=grant.admission)
    for slot in grant.slots:
        if isinstance(slot, Denied):
            granted.slot_denied = granted.slot_denied or slot
        elif grant.allowed:
            granted.leases.append(slot)
    if isinstance(grant.budget, BudgetDenied):
        granted.budget_denied = grant.budget
    elif isinstance(grant.budget, Reservation) and grant.allowed:
        granted.held = Held(grant.budget, local)
    return granted


class SharedStores:
    """The quota stage's stores, with the fallback the config asks for."""

    def __init__(self, settings: SharedStateSettings, clock: Clock,
                 redis: Redis | None = None) -> None:
        self.settings = settings
        self._clock = clock
        self._local_limits = MemoryRateLimiter(clock)
        self._local_budgets = MemoryBudgetLedger(clock)
        self._budgets: BudgetLedger = self._local_budgets
        self._quota: RedisQuota | None = None
        self.shared = redis is not None
        """Whether a shared store (Redis) is configured at all."""
        if redis is not None:
            from turnout.state.redis_budgets import RedisBudgetLedger
            from turnout.state.redis_quota import RedisQuota

            self._budgets = RedisBudgetLedger(redis, prefix=settings.prefix)
            self._quota = RedisQuota(redis, prefix=settings.prefix)
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

    # -- one call's quota --------------------------------------------------------------
    async def admit(self, limits: Sequence[Limit], slots: Sequence[Slot],
                    charges: Sequence[Charge], lease_s: float) -> Granted:
        """Consume `limits`, take `slots` and reserve `charges`, all or nothing: on Redis
        in one script (one round trip); in this process otherwise, or while Redis is away
        (hard budgets then fail closed, raising `StateUnavailable`, or use this replica's
        slice, as configured)."""
        if charges:
            self._ensure_sweeper()
        reservation_id = self.reservation_id() if charges else ""
        if self._quota is not None and self._use_shared():
            try:
                grant = await self._quota.admit(reservation_id, limits, slots, charges,
                                                lease_s)
            except StateUnavailable as exc:
                self._lost(exc)
            else:
                self._ok()
                return _granted(grant, local=False)
        if charges and self.shared and self.settings.budgets_when_down != "local_slice":
            raise StateUnavailable(
                "Budgets cannot be checked: the shared state store is unreachable. Retry "
                "shortly.", retry_after=PROBE_S)
        return await self._admit_here(reservation_id, limits, slots, charges, lease_s)

    async def _admit_here(self, reservation_id: str, limits: Sequence[Limit],
                          slots: Sequence[Slot], charges: Sequence[Charge],
                          lease_s: float) -> Granted:
        """`admit` on this process's stores: in-process calls never wait, so the steps
        run one after the other and whatever was taken is given back on a refusal."""
        granted = Granted(local=True)
        budgets = self._local_budgets
        if charges:
            if self.shared:  # Redis is away: this replica's slice of each hard budget
                slice_ = self.settings.local_slice
                charges = [Charge(c.key, c.limit if c.limit == MAX_UNITS
                                  else int(c.limit * slice_), c.amount, c.ttl_s)
                           for c in charges]
            result = await budgets.reserve(reservation_id, charges, lease_s)
            if isinstance(result, BudgetDenied):
                granted.budget_denied = result
                return granted
            granted.held = Held(result, self.shared)
        limiter = self._local_limits
        for slot in slots:
            taken = await limiter.enter(slot.key, slot.limit, lease_s)
            if isinstance(taken, Denied):
                granted.slot_denied = taken
                await self._give_back(granted)
                return granted
            granted.leases.append(taken)
        if limits:
            granted.admission = admission = await limiter.acquire(limits)
            if not admission.allowed:
                await self._give_back(granted)
        return granted

    async def _give_back(self, granted: Granted) -> None:
        for lease in granted.leases:
            await self._local_limits.leave(lease)
        granted.leases.clear()
        if granted.held is not None:
            reservation = granted.held.reservation
            await self._local_budgets.settle(reservation.reservation_id,
                                             dict.fromkeys((c.key for c in reservation.charges), 0))
            granted.held = None

    async def release(self, granted: Granted, actual: dict[str, int] | None) -> dict[str, int]:
        """Give the call's slots back and settle its reservation at `actual` (a mapping
        naming every reserved key; None when nothing was reserved). Returns each settled
        budget's spent units after it, for alerts (empty if nothing was settled)."""
        held = granted.held
        if not granted.local and self._quota is not None:
            try:
                return await self._quota.release(
                    granted.leases, held.reservation.reservation_id if held else None,
                    actual)
            except StateUnavailable as exc:
                # Slots expire on their own; the reservation is swept at its full amount:
                # conservative, a hard budget never under-counts.
                self._lost(exc)
                if held is not None:
                    _log.warning("could not settle reservation %s (shared state "
                                 "unreachable); it will be swept at its reserved amount",
                                 held.reservation.reservation_id)
                return {}
        for lease in granted.leases:
            await self._local_limits.leave(lease)
        if held is None or actual is None:
            return {}
        budgets = self._local_budgets
        await budgets.settle(held.reservation.reservation_id, actual)
        if held.local:
            for charge in held.reservation.charges:
                units, _ = self._unsynced.get(charge.key, (0, None))
                self._unsynced[charge.key] = (units + actual[charge.key], charge.ttl_s)
        return {key: (await budgets.usage(key)).spent for key in actual}

    def reservation_id(self) -> str:
        self._next_id += 1
        return f"{self._ids}{self._next_id:x}"

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
