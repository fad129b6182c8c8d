"""The chaos benchmark's route policy, fault scenarios and goals (plain data)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

ALIAS = "chaos"
TARGETS = ("primary", "secondary", "tertiary")
"""Simulator names, in priority order (the first `--targets` of them are used)."""

PER_TRY_TIMEOUT_S = 1.0

# The policy under test: Turnout's defaults, written out so that the printed config is the
# whole truth, except for the small per-try timeout the hang scenario needs.
POLICY_YAML = f"""\
    retry: {{max_attempts_per_target: 2, max_attempts_total: 6, base_delay_s: 0.1,
             max_delay_s: 2.0, max_retry_after_s: 5.0, budget_ratio: 0.2,
             min_retries_per_window: 3, window_s: 10}}
    timeouts: {{connect_s: {PER_TRY_TIMEOUT_S:g}, ttft_s: {PER_TRY_TIMEOUT_S:g},
                idle_s: {PER_TRY_TIMEOUT_S:g}, per_attempt_s: {PER_TRY_TIMEOUT_S:g},
                total_s: 30}}
    breaker: {{consecutive_failures: 5, failure_rate_threshold: 0.5, min_calls: 20,
              window_s: 30, base_ejection_s: 5, max_ejection_s: 300,
              half_open_max_probes: 1, max_ejected_share: 0.5}}
"""
BUDGET_RATIO = 0.2
MIN_RETRIES_PER_WINDOW = 3
BUDGET_WINDOW_S = 10.0


def gateway_config(base_urls: dict[str, str], targets: int) -> str:
    """One route, `chaos`, whose targets are the simulators in priority order."""
    providers = "".join(
        f"  {name}: {{kind: openai_compatible, base_url: \"{base_urls[name]}\","
        " api_key: {env: SIMKEY}}\n" for name in TARGETS[:targets])
    route_targets = ", ".join(f"{{provider: {name}, model: gpt-4o-mini, priority: {i}}}"
                              for i, name in enumerate(TARGETS[:targets]))
    return (f"local: false\nproviders:\n{providers}"
            f"routes:\n  {ALIAS}: {{targets: [{route_targets}]}}\n"
            f"router:\n  policy:\n{POLICY_YAML}")


@dataclass(frozen=True)
class Scenario:
    """Faults queued (`times: -1`) on the primary, or on every target when `everywhere`."""

    key: str
    title: str
    faults: tuple[dict[str, Any], ...] = ()
    everywhere: bool = False
    modes: tuple[str, ...] = ("non-stream", "stream")
    expect_errors: bool = False
    """Client-visible errors are expected (no healthy target, or a failure after the first
    byte, which the streaming rule turns into a terminal error event)."""
    notes: str = ""
    extra_goals: tuple[str, ...] = field(default_factory=tuple)


def _status(status: int, **extra: Any) -> dict[str, Any]:
    return {"kind": "status", "status": status, "times": -1, **extra}


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthy", "healthy baseline"),
    Scenario("500", "primary 500s", (_status(500),)),
    Scenario("429-1", "primary 429, Retry-After: 1",
             (_status(429, headers={"Retry-After": "1"}),)),
    Scenario("429-30", "primary 429, Retry-After: 30",
             (_status(429, headers={"Retry-After": "30"}),), extra_goals=("429-30",)),
    Scenario("529", "primary 529 overloaded", (_status(529),)),
    Scenario("hang", f"primary hangs (per-try timeout {PER_TRY_TIMEOUT_S:g} s)",
             ({"kind": "hang", "times": -1},), extra_goals=("hang",)),
    Scenario("reset", "primary resets connections", ({"kind": "reset", "times": -1},)),
    Scenario("malformed", "primary sends malformed JSON",
             ({"kind": "malformed", "times": -1},)),
    Scenario("error-event", "error event inside a 200 stream (after 1 chunk)",
             ({"kind": "error_event", "after_chunks": 1, "times": -1},), modes=("stream",)),
    Scenario("cut-1", "stream cut after 1 chunk",
             ({"kind": "cut_stream", "after_chunks": 1, "times": -1},), modes=("stream",)),
    Scenario("cut-content", "stream cut after 4 chunks (text already sent)",
             ({"kind": "cut_stream", "after_chunks": 4, "times": -1},), modes=("stream",),
             expect_errors=True,
             notes="informational: past the first content byte a cut is a terminal error "
                   "event (stream_continuation is off)"),
    Scenario("outage", "total outage (every target 500)", (_status(500),), everywhere=True,
             expect_errors=True, extra_goals=("outage",)),
)


def outage_bound(sent: int, duration_s: float) -> float:
    """1 + the retry budget: the share of requests, plus the per-window floor."""
    windows = max(1, math.ceil(duration_s / BUDGET_WINDOW_S))
    return 1 + BUDGET_RATIO + MIN_RETRIES_PER_WINDOW * windows / max(1, sent)
