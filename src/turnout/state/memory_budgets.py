"""`MemoryBudgetLedger`: the in-process budget ledger, the embedded default.

Correct under asyncio concurrency because no method awaits between checking a budget and
updating it. Not thread-safe; one instance belongs to one event loop.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from turnout.resilience.clock import Clock
from turnout.state.budgets import (
    DEFAULT_KEY_TTL_S,
    KEEP_AFTER_LEASE_S,
    BudgetDenied,
    BudgetUsage,
    Charge,
    Reservation,
    check_actual,
    check_charges,
    resolve_actual,
)


@dataclass(slots=True)
class _Budget:
    spent: int = 0
    reserved: int = 0
    expires_at: float = 0.0


@dataclass(slots=True)
class _Held:
    reservation: Reservation
    ttl_s: dict[str, float]
    """Each key's TTL at reserve time, to recreate a key that expired meanwhile."""


class MemoryBudgetLedger:
    """Budgets and reservations in this process's memory. `sweep` also drops expired
    budget keys; run it periodically."""

    __slots__ = ("_budgets", "_clock", "_default_ttl_s", "_expiries", "_held")

    def __init__(self, clock: Clock, *, default_ttl_s: float = DEFAULT_KEY_TTL_S) -> None:
        self._clock = clock
        self._default_ttl_s = default_ttl_s
        self._budgets: dict[str, _Budget] = {}
        self._held: dict[str, _Held] = {}
        self._expiries: list[tuple[float, str]] = []
        """A heap of (lease expiry, reservation id); settled ids are skipped when popped."""

    async def reserve(self, reservation_id: str, charges: Sequence[Charge], lease_s: float,
                      now: float | None = None) -> Reservation | BudgetDenied:
        check_charges(charges, lease_s)
        at = self._clock.monotonic() if now is None else now
        existing = self._held.get(reservation_id)
        if existing is not None:
            return existing.reservation
        stored = self._budgets
        budgets: list[_Budget] = []
        for charge in charges:
            budget = stored.get(charge.key)
            if budget is None or budget.expires_at <= at:
                budget = _Budget()  # unknown or expired: stored only if reserved below
            if budget.spent + budget.reserved + charge.amount > charge.limit:
                return BudgetDenied(charge, budget.spent, budget.reserved)
            budgets.append(budget)
        ttls: dict[str, float] = {}
        default_ttl_s = self._default_ttl_s
        keep_s = lease_s + KEEP_AFTER_LEASE_S
        for charge, budget in zip(charges, budgets, strict=True):
            ttl = default_ttl_s if charge.ttl_s is None else charge.ttl_s
            if keep_s > ttl:  # `key_ttl_s`: max(ttl, lease_s + KEEP_AFTER_LEASE_S)
                ttl = keep_s
            ttls[charge.key] = ttl
            budget.reserved += charge.amount
            expires_at = at + ttl
            if expires_at > budget.expires_at:  # max(budget.expires_at, at + ttl)
                budget.expires_at = expires_at
            stored[charge.key] = budget
        reservation = Reservation(reservation_id, tuple(charges), at + lease_s)
        self._held[reservation_id] = _Held(reservation, ttls)
        heapq.heappush(self._expiries, (reservation.expires_at, reservation_id))
        return reservation

    async def settle(self, reservation_id: str, actual: Mapping[str, int] | int) -> bool:
        check_actual(actual)
        held = self._held.get(reservation_id)
        if held is None:
            return False
        charges = held.reservation.charges
        if type(actual) is dict and len(actual) == len(charges) and all(
                c.key in actual for c in charges):
            actuals: Mapping[str, int] = actual  # names exactly the (distinct) keys
        else:
            amounts = {c.key: c.amount for c in charges}
            actuals = resolve_actual(reservation_id, amounts, actual)
        self._close(reservation_id, held, actuals, self._clock.monotonic())
        return True

    async def sweep(self, now: float | None = None) -> list[str]:
        at = self._now(now)
        swept: list[str] = []
        while self._expiries and self._expiries[0][0] <= at:
            expiry, reservation_id = heapq.heappop(self._expiries)
            held = self._held.get(reservation_id)
            if held is None or held.reservation.expires_at != expiry:
                continue  # settled before its lease ran out (and perhaps reserved again)
            full = {c.key: c.amount for c in held.reservation.charges}
            self._close(reservation_id, held, full, at)
            swept.append(reservation_id)
        for key in [k for k, b in self._budgets.items() if b.expires_at <= at]:
            del self._budgets[key]
        return swept

    async def usage(self, key: str) -> BudgetUsage:
        budget = self._budget(key, self._clock.monotonic())
        return BudgetUsage(budget.spent, budget.reserved)

    def _close(self, reservation_id: str, held: _Held, actuals: Mapping[str, int],
               at: float) -> None:
        del self._held[reservation_id]
        for charge in held.reservation.charges:
            budget = self._budgets.get(charge.key)
            if budget is None or budget.expires_at <= at:
                # The key expired before the reservation ended (a sweep far behind):
                # start it again rather than carry a reservation that no longer exists.
                budget = self._budgets[charge.key] = _Budget(
                    0, charge.amount, at + held.ttl_s[charge.key])
            budget.reserved -= charge.amount
            budget.spent += actuals[charge.key]

    def _budget(self, key: str, at: float) -> _Budget:
        """The key's live counters (a fresh, unstored one when unknown or expired)."""
        budget = self._budgets.get(key)
        if budget is None or budget.expires_at <= at:
            return _Budget()
        return budget

    def _now(self, now: float | None) -> float:
        return self._clock.monotonic() if now is None else now
