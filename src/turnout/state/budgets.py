"""Budgets: the `BudgetLedger` protocol and its value types.

A budget is a key (e.g. `tenant:acme:day:2026-12-02`) with a limit in integer units
(micro-dollars, tokens). A call first *reserves* its worst case against every budget it is
charged to, then *settles* at what it really cost:

- `reserve` admits a call only if, for every charge, `spent + reserved + amount <= limit`;
  then `reserved += amount` on each. All charges or none, atomically, across replicas.
- `settle` ends a reservation: `reserved -= amount; spent += actual` on each of its keys.
  It is idempotent per reservation id: settling twice counts once, so a stage may settle
  again after a crash or a lost reply without double-charging.
- A reservation is a lease: one not settled within `lease_s` (its replica crashed) is
  settled by `sweep` at its full reserved amount. That is conservative for a hard budget:
  the money may have been spent and nothing says it was not. The spend ledger (the record
  of each call) can reconcile the difference later; the budget never under-counts.

The limit bounds what reservations may hold, not what calls really cost: an actual larger
than its reservation still counts in full, and then later reservations are refused.

Budget keys expire (`Charge.ttl_s`, or the ledger's default) so a long-running store does
not keep every past day's budgets: the stage that builds a key from a period knows when the
period ends and passes the time until then plus whatever grace it wants.

Times are in the store's timebase, as for rate limits (see `turnout.state.limits`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

DEFAULT_KEY_TTL_S = 35 * 86_400.0
"""How long a budget key is kept when its charge does not say: a calendar month and some."""

KEEP_AFTER_LEASE_S = 3_600.0
"""A budget key and a reservation's record outlive the reservation's lease by at least this
much, so a sweep that runs late still finds what it must settle."""

MAX_UNITS = 2**53 - 1
"""Amounts and limits stay below 2**53: Redis's Lua computes in doubles, exact up to it."""


@dataclass(frozen=True, slots=True)
class Charge:
    """What one call reserves against one budget."""

    key: str
    """The budget's identity, e.g. `tenant:acme:day:2026-12-02`."""
    limit: int
    """The budget, in integer units (micro-dollars or tokens)."""
    amount: int
    """Units to reserve: the call's worst case."""
    ttl_s: float | None = None
    """Keep the budget at least this long from now (None: the ledger's default)."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Units held against budgets until `settle` (or `sweep`, after `expires_at`)."""

    reservation_id: str
    charges: tuple[Charge, ...]
    expires_at: float
    """When `sweep` may settle it at its full amount (the store's timebase)."""


@dataclass(frozen=True, slots=True)
class BudgetDenied:
    """A charge did not fit; nothing was reserved."""

    charge: Charge
    """The first charge, in the order given, that did not fit."""
    spent: int
    reserved: int

    @property
    def available(self) -> int:
        """Units that could still be reserved against this budget."""
        return max(self.charge.limit - self.spent - self.reserved, 0)


class BudgetUsage(NamedTuple):
    """A budget's counters."""

    spent: int
    reserved: int


class BudgetLedger(Protocol):
    """Reservations against integer budgets shared by every caller of one store."""

    async def reserve(self, reservation_id: str, charges: Sequence[Charge], lease_s: float,
                      now: float | None = None) -> Reservation | BudgetDenied:
        """Reserve every charge or none. Budget keys must be distinct. Reserving again
        under a live reservation's id returns that reservation and reserves nothing more
        (a retried call after a lost reply); ids must be unique per call."""
        ...

    async def settle(self, reservation_id: str, actual: Mapping[str, int] | int) -> bool:
        """End a reservation at its actual cost: one amount applied to each of its keys,
        or a mapping naming exactly its keys. Returns False, changing nothing, when the
        reservation is already settled, swept, or unknown."""
        ...

    async def sweep(self, now: float | None = None) -> list[str]:
        """Settle every reservation whose lease has expired at its full reserved amount;
        returns their ids."""
        ...

    async def usage(self, key: str) -> BudgetUsage:
        """A budget's spent and reserved units (zeros for an unknown or expired key)."""
        ...


def check_charges(charges: Sequence[Charge], lease_s: float) -> None:
    """Reject malformed charges before they reach a store (same rules for every store)."""
    if 0 < lease_s < math.inf:  # the common case in one pass; any doubt: rule by rule
        seen: set[str] = set()
        for charge in charges:
            key, ttl = charge.key, charge.ttl_s
            if (not key or key in seen or not 0 <= charge.amount <= MAX_UNITS
                    or not 0 <= charge.limit <= MAX_UNITS
                    or (ttl is not None and not 0 < ttl < math.inf)):
                break
            seen.add(key)
        else:
            return
    _explain_charges(charges, lease_s)


def _explain_charges(charges: Sequence[Charge], lease_s: float) -> None:
    """Raise the first problem of a reservation, in the order the rules are stated."""
    if not (lease_s > 0 and math.isfinite(lease_s)):
        raise ValueError("a reservation's lease must be a positive number of seconds")
    seen: set[str] = set()
    for charge in charges:
        if not charge.key:
            raise ValueError("a budget charge needs a key")
        if charge.key in seen:
            raise ValueError(f"budget key {charge.key!r} is charged twice in one reservation")
        seen.add(charge.key)
        if not (0 <= charge.amount <= MAX_UNITS and 0 <= charge.limit <= MAX_UNITS):
            raise ValueError(f"budget {charge.key!r}: amount and limit must be integers "
                             f"in [0, 2**53)")
        if charge.ttl_s is not None and not (charge.ttl_s > 0 and math.isfinite(charge.ttl_s)):
            raise ValueError(f"budget {charge.key!r}: ttl_s must be positive")


def check_actual(actual: Mapping[str, int] | int) -> None:
    amounts = actual.values() if isinstance(actual, Mapping) else (actual,)
    for amount in amounts:
        if not 0 <= amount <= MAX_UNITS:
            raise ValueError("actual amounts must be integers in [0, 2**53)")


def key_ttl_s(charge: Charge, default_s: float, lease_s: float) -> float:
    """How long a reserve keeps a budget key from now: its own TTL, but never less than
    the reservation needs."""
    ttl = default_s if charge.ttl_s is None else charge.ttl_s
    return max(ttl, lease_s + KEEP_AFTER_LEASE_S)


def resolve_actual(reservation_id: str, amounts: Mapping[str, int],
                   actual: Mapping[str, int] | int) -> dict[str, int]:
    """Each key's actual amount for settling a reservation that charged `amounts`."""
    if not isinstance(actual, Mapping):
        return dict.fromkeys(amounts, actual)
    if set(actual) != set(amounts):
        raise ValueError(f"settling {reservation_id!r}: the actual amounts must name exactly "
                         f"the reserved keys {sorted(amounts)}, not {sorted(actual)}")
    return dict(actual)
