"""Pure, I/O-free resilience primitives: backoff and the retry decision, circuit breakers
with an ejection cap, retry/hedge budgets, per-deployment health, and balancers.

Time and randomness are injected (`Clock`, `RandomSource`); nothing here sleeps, locks or
does I/O. The executor wires these into real calls and alone decides which outcomes count.
"""

from turnout.resilience.backoff import (
    Action,
    BackoffSettings,
    Reason,
    RetryDecision,
    backoff_delay,
    decide,
    retry_delay,
    should_wait,
)
from turnout.resilience.balancer import (
    STRATEGIES,
    Candidate,
    CandidateSnapshot,
    Strategy,
    get_strategy,
    order_candidates,
)
from turnout.resilience.breaker import (
    BreakerSettings,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
)
from turnout.resilience.clock import Clock, FakeClock, RandomSource, SystemClock
from turnout.resilience.ejection import BreakerBoard
from turnout.resilience.health import DeploymentHealth, HealthSettings, HealthSnapshot
from turnout.resilience.retry_budget import BudgetSettings, HedgeBudget, RetryBudget

__all__ = [
    "STRATEGIES",
    "Action",
    "BackoffSettings",
    "BreakerBoard",
    "BreakerSettings",
    "BreakerSnapshot",
    "BreakerState",
    "BudgetSettings",
    "Candidate",
    "CandidateSnapshot",
    "CircuitBreaker",
    "Clock",
    "DeploymentHealth",
    "FakeClock",
    "HealthSettings",
    "HealthSnapshot",
    "HedgeBudget",
    "RandomSource",
    "Reason",
    "RetryBudget",
    "RetryDecision",
    "Strategy",
    "SystemClock",
    "backoff_delay",
    "decide",
    "get_strategy",
    "order_candidates",
    "retry_delay",
    "should_wait",
]
