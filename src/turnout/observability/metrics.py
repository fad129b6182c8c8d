"""Prometheus metrics from engine events, and resilience state read at scrape time.

`PrometheusObserver` turns the engine's typed events into counters and histograms on its
own `CollectorRegistry` (never the process-wide default one, so two engines in one process,
or two tests, never share series). `StateCollector` reads breakers, in-flight counts and
429 cooldowns only when Prometheus scrapes, so the request path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from turnout.engine.observe import AttemptEvent, FailoverEvent, RequestEvent
from turnout.engine.state import ResilienceState
from turnout.resilience.breaker import BreakerState

# LLM calls span four orders of magnitude: a cached or tiny answer in tens of milliseconds,
# a long reasoning completion in minutes. Roughly x2-x2.5 steps keep quantile estimates
# within one bucket's error across that whole range.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)
"""Buckets (seconds) for whole requests and upstream attempts."""

TTFT_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)
"""Buckets (seconds) for time to first token: shorter, the first token rarely takes minutes."""

UNKNOWN_ROUTE = "(unknown)"
"""Route label of requests for a model no route serves. The requested name comes from the
client: used as a label it would let any client create unbounded series."""

BREAKER_STATE_VALUES: dict[BreakerState, float] = {
    BreakerState.CLOSED: 0.0,
    BreakerState.HALF_OPEN: 1.0,
    BreakerState.OPEN: 2.0,
}
"""`turnout_breaker_state` values: ordered by how much traffic the deployment gets."""


def _flag(value: bool) -> str:
    return "true" if value else "false"


class PrometheusObserver:
    """An engine `Observer` that records request, attempt, failover and token metrics.

    Every metric lives on `registry` (a new one unless given). Labelled children are cached
    by their label tuple: `Metric.labels()` validates and locks on every call, too slow for
    a per-attempt path.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter("turnout_requests_total", "Client requests that ended.",
                                ("route", "status", "stream"), registry=r)
        self.request_duration = Histogram(
            "turnout_request_duration_seconds",
            "Whole client requests, every retry and fallback included (streams: until the "
            "last event was relayed).", ("route", "stream"), buckets=LATENCY_BUCKETS,
            registry=r)
        self.attempts = Counter(
            "turnout_attempts_total", "Upstream attempts by how they ended; reason is the "
            "failure's fallback class (empty for successes and cancellations).",
            ("deployment", "provider", "kind", "outcome", "reason"), registry=r)
        self.failovers = Counter("turnout_failovers_total",
                                 "Requests that moved on from one deployment to the next.",
                                 ("route", "reason"), registry=r)
        self.upstream_latency = Histogram(
            "turnout_upstream_latency_seconds",
            "Upstream attempts that got an answer or an error (streams: until the first "
            "content, where a stream attempt ends).", ("deployment",),
            buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("turnout_time_to_first_token_seconds",
                              "Time to the first content of streamed requests.", ("route",),
                              buckets=TTFT_BUCKETS, registry=r)
        self.tokens = Counter("turnout_tokens_total", "Tokens of finished requests.",
                              ("route", "direction"), registry=r)
        self._requests: dict[tuple[str, int, bool], Counter] = {}
        self._durations: dict[tuple[str, bool], Histogram] = {}
        self._attempts: dict[tuple[str, str, str, str, str | None], Counter] = {}
        self._failovers: dict[tuple[str, str], Counter] = {}
        self._latencies: dict[str, Histogram] = {}
        self._ttfts: dict[str, Histogram] = {}
        self._tokens: dict[str, tuple[Counter, Counter]] = {}

    # -- Observer protocol ------------------------------------------------------------------
    def on_attempt(self, event: AttemptEvent) -> None:
        key = (event.deployment, event.provider, event.kind, event.outcome, event.reason)
        counter = self._attempts.get(key)
        if counter is None:
            counter = self._attempts[key] = self.attempts.labels(
                event.deployment, event.provider, event.kind, event.outcome,
                event.reason or "")
        counter.inc()
        if event.outcome == "cancelled":
            return  # a cancelled attempt's duration says nothing about the upstream
        latency = self._latencies.get(event.deployment)
        if latency is None:
            latency = self._latencies[event.deployment] = self.upstream_latency.labels(
                event.deployment)
        latency.observe(event.latency_s)

    def on_failover(self, event: FailoverEvent) -> None:
        key = (event.route, event.reason)
        counter = self._failovers.get(key)
        if counter is None:
            counter = self._failovers[key] = self.failovers.labels(event.route, event.reason)
        counter.inc()

    def on_request(self, event: RequestEvent) -> None:
        route = event.route
        if event.attempts == 0 and event.error_code == "model_not_found":
            route = UNKNOWN_ROUTE
        key = (route, event.status, event.stream)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(
                route, str(event.status), _flag(event.stream))
        counter.inc()
        duration = self._durations.get((route, event.stream))
        if duration is None:
            duration = self._durations[(route, event.stream)] = self.request_duration.labels(
                route, _flag(event.stream))
        duration.observe(event.latency_s)
        if event.ttft_s is not None:
            ttft = self._ttfts.get(route)
            if ttft is None:
                ttft = self._ttfts[route] = self.ttft.labels(route)
            ttft.observe(event.ttft_s)
        usage = event.usage
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            pair = self._tokens.get(route)
            if pair is None:
                pair = self._tokens[route] = (self.tokens.labels(route, "input"),
                                              self.tokens.labels(route, "output"))
            pair[0].inc(usage.input_tokens)
            pair[1].inc(usage.output_tokens)


class StateCollector:
    """Breaker, in-flight and cooldown gauges of every known deployment, read from the
    engine's `ResilienceState` at scrape time.

    Register it on a registry: `registry.register(StateCollector(engine.state))`. It reads
    the state without locking, so scrape on the engine's event loop (the gateway's
    `/metrics` handler does), not from a `start_http_server` thread.
    """

    def __init__(self, state: ResilienceState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering does not read the state."""
        return list(_families())

    def collect(self) -> Iterable[Metric]:
        state = self.state
        breaker_state, ejections, in_flight, cooldown = families = _families()
        snapshots = state.breakers.snapshot()
        now = state.clock.monotonic()
        ids = sorted({*snapshots, *state.health, *state.cooldown_until})
        for deployment in ids:
            labels = (deployment,)
            snapshot = snapshots.get(deployment)
            if snapshot is not None:
                breaker_state.add_metric(labels, BREAKER_STATE_VALUES[snapshot.state])
                ejections.add_metric(labels, snapshot.times_ejected)
            health = state.health.get(deployment)
            in_flight.add_metric(labels, health.in_flight if health is not None else 0)
            until = state.cooldown_until.get(deployment)
            cooldown.add_metric(labels, max(0.0, until - now) if until is not None else 0.0)
        return families


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
                         GaugeMetricFamily]:
    labels = ("deployment",)
    return (
        GaugeMetricFamily("turnout_breaker_state",
                          "Circuit breaker state: 0 closed, 1 half-open, 2 open (ejected).",
                          labels=labels),
        GaugeMetricFamily("turnout_breaker_ejections",
                          "Recent ejections, after decay (each one doubles the next "
                          "ejection's length).", labels=labels),
        GaugeMetricFamily("turnout_deployment_in_flight",
                          "Upstream attempts in flight.", labels=labels),
        GaugeMetricFamily("turnout_deployment_cooldown_seconds",
                          "Seconds left of the cooldown after an upstream 429 (0: none).",
                          labels=labels),
    )

