"""Resilience policies as validated, frozen data.

The router's `policy` block gives the defaults for every route; a route's own `policy`
block overrides only the keys it names (`merge_policy`). The resilience engine consumes the
merged `RoutePolicy`; nothing here has behaviour beyond validation and classification.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from turnout.core.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ContentFiltered,
    ContextWindowExceeded,
    MalformedResponse,
    ModelNotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    ServerError,
    TurnoutError,
    UpstreamTimeout,
)

FallbackReason = Literal[
    "rate_limited",
    "overloaded",
    "server_error",
    "timeout",
    "connection",
    "malformed_response",
    "content_filtered",
    "context_window",
    "authentication",
    "model_not_found",
]
"""Classes of failure after which the next target (or fallback route) is tried."""

DEFAULT_FALLBACK_ON: tuple[FallbackReason, ...] = (
    "rate_limited",
    "overloaded",
    "server_error",
    "timeout",
    "connection",
    "malformed_response",
)

BalanceStrategy = Literal["weighted", "least_in_flight", "latency", "headroom"]

RetryOrder = Literal["failover_first", "retry_first"]
"""After a retryable failure: move to the next target at once and retry only the last
target standing (`failover_first`), or retry the same target first, within its limits,
and fail over only when a retry is not allowed or not worth the wait (`retry_first`)."""

EjectionGrowth = Literal["doubling", "fixed"]
"""How long repeated ejections last: doubling each time up to `max_ejection_s`, or always
`base_ejection_s` (a fixed cooldown)."""

_STRICT = ConfigDict(extra="forbid", frozen=True)
_M = TypeVar("_M", bound=BaseModel)


class RetryPolicy(BaseModel):
    """Retries of the same target, bounded per target, per request and by a retry budget."""

    model_config = _STRICT

    max_attempts_per_target: int = Field(2, ge=1)
    """Attempts on one target, the first included (1 = never retry the same target)."""
    max_attempts_total: int = Field(6, ge=1)
    """Attempts across every target and fallback of one request."""
    base_delay_s: float = Field(0.1, ge=0)
    """First backoff delay; doubles per retry with full jitter."""
    max_delay_s: float = Field(2.0, ge=0)
    max_retry_after_s: float = Field(5.0, ge=0)
    """Honour an upstream `Retry-After` up to this long; a longer wait moves on to the next
    target instead of sleeping."""
    budget_ratio: float = Field(0.2, ge=0, le=1)
    """Retries allowed as a share of recent requests (Envoy-style retry budget)."""
    min_retries_per_window: int = Field(3, ge=0)
    """Retries always allowed per window, so a quiet route can still retry."""
    window_s: float = Field(10, gt=0)
    order: RetryOrder = "failover_first"
    """`failover_first`: another target takes the request at once, and only the last
    target standing is retried. `retry_first`: the failed target is retried first (within
    `max_attempts_per_target`, the retry budget, the deadline and `max_retry_after_s`),
    and the request fails over when it may not be."""


class TimeoutPolicy(BaseModel):
    """Typed deadlines for one attempt and for the whole request. `null` disables one."""

    model_config = _STRICT

    connect_s: float | None = Field(5, gt=0)
    ttft_s: float | None = Field(30, gt=0)
    """Streams: time from sending to the first streamed content. Non-stream calls are
    bounded by `per_attempt_s` alone (their headers come with the finished answer)."""
    idle_s: float | None = Field(30, gt=0)
    """Longest silence between two stream chunks."""
    per_attempt_s: float | None = Field(120, gt=0)
    """One attempt: the whole of a non-stream call, and the wait for a stream's first
    content (which `ttft_s` bounds as well)."""
    total_s: float | None = Field(300, gt=0)
    """The whole request, every retry and fallback included."""


class BreakerPolicy(BaseModel):
    """Outlier ejection per deployment, separate from retries (Envoy-style)."""

    model_config = _STRICT

    consecutive_failures: int | None = Field(5, ge=1)
    """Failures in a row that eject the deployment; `null` switches this rule off."""
    failure_rate_threshold: float | None = Field(0.5, gt=0, le=1)
    """Failure share in the window that ejects the deployment; `null` switches this rule
    off."""
    min_calls: int = Field(20, ge=1)
    """Calls in the window before the failure rate is considered."""
    window_s: float = Field(30, gt=0)
    base_ejection_s: float = Field(5, gt=0)
    """First ejection time; with `ejection_growth: doubling` it doubles with each
    re-ejection up to `max_ejection_s`."""
    max_ejection_s: float = Field(300, gt=0)
    ejection_growth: EjectionGrowth = "doubling"
    """`fixed`: every ejection lasts `base_ejection_s` (`max_ejection_s` is unused)."""
    half_open_max_probes: int = Field(1, ge=1)
    max_ejected_share: float = Field(0.5, ge=0, le=1)
    """Never eject more than this share of the deployments a request could fail over to
    (its whole plan, fallback routes included) at once. A plan of one deployment has
    nowhere to fail over to, so the cap does not apply to it."""


class BalancePolicy(BaseModel):
    """How deployments of equal priority share traffic."""

    model_config = _STRICT

    strategy: BalanceStrategy = "weighted"


class HedgePolicy(BaseModel):
    """Speculative second attempts for slow first tokens."""

    model_config = _STRICT

    enabled: bool = False
    delay_s: float | None = Field(None, gt=0)
    """Fixed hedge delay; `null` uses the observed p95 time to first token when `use_p95`."""
    use_p95: bool = True
    max_share: float = Field(0.1, ge=0, le=1)
    """Upper bound on hedged requests as a share of traffic."""


class RoutePolicy(BaseModel):
    """Everything the resilience engine needs to know about one route."""

    model_config = _STRICT

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeouts: TimeoutPolicy = Field(default_factory=TimeoutPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    balance: BalancePolicy = Field(default_factory=BalancePolicy)
    fallback_on: tuple[FallbackReason, ...] = DEFAULT_FALLBACK_ON
    hedge: HedgePolicy = Field(default_factory=HedgePolicy)
    stream_continuation: bool = False
    """Opt-in: continue a stream cut after its first byte on a fallback, with the partial
    output as an assistant prefix, never duplicating text."""

    def should_fall_back(self, error: TurnoutError) -> bool:
        """Whether `error` allows trying the next target or fallback route. A context-length
        error always does, listed or not: it says the target is too small for the request,
        which sends the request on just as the pre-call window check would have."""
        reason = fallback_reason(error)
        return reason == "context_window" or (reason is not None and reason in self.fallback_on)


def fallback_reason(error: TurnoutError) -> FallbackReason | None:
    """The `fallback_on` class of an error, or None for errors no other target can fix
    (bad requests, a closed client). The table is the single place that ties the error
    taxonomy to policy names."""
    for cls, reason in _REASONS:
        if isinstance(error, cls):
            return reason
    return None


# Order matters: subclasses before their bases (ContextWindowExceeded is an InvalidRequest).
_REASONS: tuple[tuple[type[TurnoutError], FallbackReason], ...] = (
    (RateLimited, "rate_limited"),
    (Overloaded, "overloaded"),
    (ServerError, "server_error"),
    (UpstreamTimeout, "timeout"),
    (ConnectionFailed, "connection"),
    (MalformedResponse, "malformed_response"),
    (ContentFiltered, "content_filtered"),
    (ContextWindowExceeded, "context_window"),
    (AuthenticationFailed, "authentication"),
    (PermissionDenied, "authentication"),
    (ModelNotFound, "model_not_found"),
)


def merge_policy(base: RoutePolicy, override: RoutePolicy | None) -> RoutePolicy:
    """`base` with every key the user explicitly set in `override` (recursively).

    An override is validated as a full `RoutePolicy` (so unknown keys and bad types fail
    where they are written) and pydantic records which keys were given in
    `model_fields_set`; only those replace the base values.
    """
    if override is None:
        return base
    return _merge_model(base, override)


def _merge_model(base: _M, override: BaseModel) -> _M:
    updates: dict[str, object] = {}
    for name in override.model_fields_set:
        new = getattr(override, name)
        old = getattr(base, name)
        if isinstance(new, BaseModel) and isinstance(old, BaseModel):
            updates[name] = _merge_model(old, new)
        else:
            updates[name] = new
    return base.model_copy(update=updates)


def policy_problems(policy: RoutePolicy) -> list[tuple[str, str]]:
    """Cross-field inconsistencies of a merged policy, as (key path, message) pairs."""
    problems: list[tuple[str, str]] = []
    r, t, b = policy.retry, policy.timeouts, policy.breaker
    if r.max_attempts_per_target > r.max_attempts_total:
        problems.append(("retry.max_attempts_per_target",
                         f"{r.max_attempts_per_target:g} exceeds max_attempts_total "
                         f"({r.max_attempts_total:g})"))
    if r.base_delay_s > r.max_delay_s:
        problems.append(("retry.base_delay_s",
                         f"{r.base_delay_s:g} exceeds max_delay_s ({r.max_delay_s:g})"))
    if t.per_attempt_s is not None and t.total_s is not None and t.per_attempt_s > t.total_s:
        problems.append(("timeouts.per_attempt_s",
                         f"{t.per_attempt_s:g} exceeds total_s ({t.total_s:g})"))
    if t.ttft_s is not None and t.per_attempt_s is not None and t.ttft_s > t.per_attempt_s:
        problems.append(("timeouts.ttft_s",
                         f"{t.ttft_s:g} exceeds per_attempt_s ({t.per_attempt_s:g})"))
    if b.ejection_growth == "doubling" and b.base_ejection_s > b.max_ejection_s:
        problems.append(("breaker.base_ejection_s",
                         f"{b.base_ejection_s:g} exceeds max_ejection_s ({b.max_ejection_s:g})"))
    return problems
