"""Shared state behind small protocols: rate limits (`RateLimiter`) and budgets
(`BudgetLedger`).

Each protocol has an in-process implementation, the embedded default (`MemoryRateLimiter`,
`MemoryBudgetLedger`), and a Redis one for several gateway replicas (`RedisRateLimiter`,
`RedisBudgetLedger`, with the `redis` extra installed). Both pass the same contract suite.
The Redis names are imported lazily, so the embedded default needs no Redis client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from turnout.state.budgets import (
    BudgetDenied,
    BudgetLedger,
    BudgetUsage,
    Charge,
    Reservation,
)
from turnout.state.errors import StateUnavailable
from turnout.state.limits import Admission, Denied, Lease, Limit, LimitState, RateLimiter
from turnout.state.memory_budgets import MemoryBudgetLedger
from turnout.state.memory_limits import MemoryRateLimiter

_LAZY = {
    "RedisBudgetLedger": "turnout.state.redis_budgets",
    "RedisRateLimiter": "turnout.state.redis_limits",
    "redis_client": "turnout.state.redis_base",
}

__all__ = [
    "Admission",
    "BudgetDenied",
    "BudgetLedger",
    "BudgetUsage",
    "Charge",
    "Denied",
    "Lease",
    "Limit",
    "LimitState",
    "MemoryBudgetLedger",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisBudgetLedger",
    "RedisRateLimiter",
    "Reservation",
    "StateUnavailable",
    "redis_client",
]

if TYPE_CHECKING:
    from turnout.state.redis_base import redis_client
    from turnout.state.redis_budgets import RedisBudgetLedger
    from turnout.state.redis_limits import RedisRateLimiter


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'turnout.state' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
