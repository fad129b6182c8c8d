"""Policy defaults, per-route deep merge, cross-field checks and error classification."""

from __future__ import annotations

import pytest

from turnout.config import parse_config
from turnout.config.policies import (
    RoutePolicy,
    fallback_reason,
    merge_policy,
    policy_problems,
)
from turnout.core.errors import (
    AuthenticationFailed,
    ClientClosed,
    ConnectionFailed,
    ContentFiltered,
    ContextWindowExceeded,
    InvalidRequest,
    MalformedResponse,
    ModelNotFound,
    Overloaded,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TurnoutError,
    UnsupportedFeature,
    UpstreamTimeout,
)


def test_documented_defaults() -> None:
    p = RoutePolicy()
    assert (p.retry.max_attempts_per_target, p.retry.max_attempts_total) == (2, 6)
    assert (p.retry.base_delay_s, p.retry.max_delay_s, p.retry.max_retry_after_s) == (0.1, 2, 5)
    assert (p.retry.budget_ratio, p.retry.min_retries_per_window, p.retry.window_s) == (0.2, 3, 10)
    t = p.timeouts
    assert (t.connect_s, t.ttft_s, t.idle_s, t.per_attempt_s, t.total_s) == (5, 30, 30, 120, 300)
    b = p.breaker
    assert (b.consecutive_failures, b.failure_rate_threshold, b.min_calls, b.window_s) == (
        5, 0.5, 20, 30)
    assert (b.base_ejection_s, b.max_ejection_s, b.half_open_max_probes,
            b.max_ejected_share) == (5, 300, 1, 0.5)
    assert p.balance.strategy == "weighted"
    assert p.fallback_on == ("rate_limited", "overloaded", "server_error", "timeout",
                             "connection", "malformed_response")
    assert (p.hedge.enabled, p.hedge.delay_s, p.hedge.use_p95, p.hedge.max_share) == (
        False, None, True, 0.1)
    assert p.stream_continuation is False


def test_route_override_replaces_only_the_keys_it_names() -> None:
    config = parse_config("""
router:
  policy:
    retry: {max_attempts_total: 4, base_delay_s: 0.5}
    timeouts: {ttft_s: 10}
    hedge: {enabled: true}
routes:
  r:
    targets: [{provider: local, model: m}]
    policy:
      retry: {max_attempts_per_target: 1}
      timeouts: {idle_s: null}
      fallback_on: [rate_limited, context_window]
""")
    merged = merge_policy(config.router.policy, config.routes["r"].policy)
    # from the route
    assert merged.retry.max_attempts_per_target == 1
    assert merged.timeouts.idle_s is None
    assert merged.fallback_on == ("rate_limited", "context_window")
    # from the router, where the route is silent (even inside a block it overrides)
    assert merged.retry.max_attempts_total == 4
    assert merged.retry.base_delay_s == 0.5
    assert merged.timeouts.ttft_s == 10
    assert merged.hedge.enabled is True
    # package defaults where neither speaks
    assert merged.timeouts.total_s == 300
    assert merged.breaker.consecutive_failures == 5


def test_no_override_returns_the_router_policy() -> None:
    base = RoutePolicy.model_validate({"retry": {"max_attempts_total": 3}})
    assert merge_policy(base, None) is base


def test_policies_are_frozen() -> None:
    p = RoutePolicy()
    with pytest.raises(ValueError, match="frozen"):
        p.retry.max_attempts_total = 9  # type: ignore[misc]


def test_policy_problems() -> None:
    p = RoutePolicy.model_validate({
        "retry": {"base_delay_s": 3, "max_delay_s": 2},
        "timeouts": {"ttft_s": 200},
        "breaker": {"base_ejection_s": 400},
    })
    assert policy_problems(p) == [
        ("retry.base_delay_s", "3 exceeds max_delay_s (2)"),
        ("timeouts.ttft_s", "200 exceeds per_attempt_s (120)"),
        ("breaker.base_ejection_s", "400 exceeds max_ejection_s (300)"),
    ]
    assert policy_problems(RoutePolicy()) == []


def test_disabled_timeouts_are_not_compared() -> None:
    p = RoutePolicy.model_validate({"timeouts": {"per_attempt_s": None, "total_s": 10}})
    assert policy_problems(p) == []


@pytest.mark.parametrize(("error", "reason"), [
    (RateLimited("x"), "rate_limited"),
    (Overloaded("x"), "overloaded"),
    (ServerError("x"), "server_error"),
    (ServiceUnavailable("x"), "server_error"),
    (UpstreamTimeout("x"), "timeout"),
    (ConnectionFailed("x"), "connection"),
    (MalformedResponse("x"), "malformed_response"),
    (ContentFiltered("x"), "content_filtered"),
    (ContextWindowExceeded("x"), "context_window"),
    (AuthenticationFailed("x"), "authentication"),
    (ModelNotFound("x"), "model_not_found"),
    (InvalidRequest("x"), None),
    (UnsupportedFeature("x"), None),
    (ClientClosed("x"), None),
])
def test_fallback_reason(error: TurnoutError, reason: str | None) -> None:
    assert fallback_reason(error) == reason


def test_should_fall_back_follows_fallback_on() -> None:
    default = RoutePolicy()
    assert default.should_fall_back(RateLimited("x"))
    assert not default.should_fall_back(InvalidRequest("x"))
    narrow = RoutePolicy(fallback_on=("server_error",))
    assert not narrow.should_fall_back(RateLimited("x"))
    # A target too small for the request sends it on whether listed or not.
    assert default.should_fall_back(ContextWindowExceeded("x"))
    assert narrow.should_fall_back(ContextWindowExceeded("x"))
