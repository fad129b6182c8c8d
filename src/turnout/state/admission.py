"""What one call asks of the quota stores at once, and what they answer: its rate limits,
concurrency slots and budget reservation together (see `turnout.state.redis_quota`)."""

from __future__ import annotations

from dataclasses import dataclass

from turnout.state.budgets import BudgetDenied, Reservation
from turnout.state.limits import Admission, Denied, Lease


@dataclass(frozen=True, slots=True)
class Slot:
    """A concurrency limit a call takes one slot of."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class Grant:
    """What `admit` decided: everything taken (`allowed`), or nothing."""

    allowed: bool
    admission: Admission | None
    """The rate limits' state (None when the call has none)."""
    slots: tuple[Lease | Denied, ...]
    """Per slot asked for, in order: its lease, or why it was full."""
    budget: Reservation | BudgetDenied | None
    """The reservation, or the charge that did not fit (None without charges). When
    another part refused the call, a reservation here was checked, not made."""
