"""PrometheusObserver and StateCollector, driven by a real engine against simulators."""

from __future__ import annotations

import random

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from turnout.config.runtime import RuntimeConfig
from turnout.core.errors import AllAttemptsFailed, ModelNotFound
from turnout.core.events import UsageUpdate
from turnout.core.response import Usage
from turnout.engine.engine import Engine
from turnout.engine.observe import AttemptEvent, FailoverEvent, RequestEvent
from turnout.engine.state import ResilienceState
from turnout.observability.metrics import PrometheusObserver, StateCollector
from turnout.resilience.clock import FakeClock
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import A, B, EngineFactory, ask, names, run_stream, scrape, value


def observed() -> PrometheusObserver:
    return PrometheusObserver(CollectorRegistry())


def with_state(engine: Engine) -> PrometheusObserver:
    observer = observed()
    observer.registry.register(StateCollector(engine.state))
    return observer


async def test_non_stream_failover_is_counted(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    metrics = observed()
    engine = await make_engine(metrics)
    sims["a"].faults.add(Fault(kind="status", status=500))
    outcome = await engine.chat(ask())
    assert outcome.deployment.id == B
    s = scrape(metrics.registry)
    assert value(s, "turnout_requests_total",
                 {"route": "r", "status": 200, "stream": "false"}) == 1
    assert value(s, "turnout_attempts_total", {
        "deployment": A, "provider": "a", "kind": "first", "outcome": "error",
        "reason": "server_error"}) == 1
    assert value(s, "turnout_attempts_total", {
        "deployment": B, "provider": "b", "kind": "fallback", "outcome": "ok",
        "reason": ""}) == 1
    assert value(s, "turnout_failovers_total", {"route": "r", "reason": "server_error"}) == 1
    assert value(s, "turnout_request_duration_seconds_count",
                 {"route": "r", "stream": "false"}) == 1
    assert value(s, "turnout_upstream_latency_seconds_count", {"deployment": A}) == 1
    assert value(s, "turnout_upstream_latency_seconds_count", {"deployment": B}) == 1
    usage = outcome.response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert value(s, "turnout_tokens_total",
                 {"route": "r", "direction": "input"}) == usage.input_tokens
    assert value(s, "turnout_tokens_total",
                 {"route": "r", "direction": "output"}) == usage.output_tokens
    # Not a stream: no time to first token.
    assert "turnout_time_to_first_token_seconds_count" not in names(s)


async def test_stream_failover_records_ttft_and_streamed_usage(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    metrics = observed()
    engine = await make_engine(metrics)
    sims["a"].faults.add(Fault(kind="status", status=529))
    streamed = await run_stream(engine, ask())
    usage = Usage()
    for event in streamed.events:
        if isinstance(event, UsageUpdate):
            usage.merge(event.usage)
    assert usage.output_tokens > 0
    s = scrape(metrics.registry)
    assert value(s, "turnout_requests_total",
                 {"route": "r", "status": 200, "stream": "true"}) == 1
    assert value(s, "turnout_requests_total",
                 {"route": "r", "status": 200, "stream": "false"}) is None
    assert value(s, "turnout_failovers_total", {"route": "r", "reason": "overloaded"}) == 1
    assert value(s, "turnout_attempts_total", {
        "deployment": A, "provider": "a", "kind": "first", "outcome": "error",
        "reason": "overloaded"}) == 1
    assert value(s, "turnout_time_to_first_token_seconds_count", {"route": "r"}) == 1
    assert value(s, "turnout_tokens_total",
                 {"route": "r", "direction": "output"}) == usage.output_tokens


async def test_failed_request_is_counted_under_its_status(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    metrics = observed()
    engine = await make_engine(metrics)
    for sim in sims.values():
        sim.faults.add(Fault(kind="status", status=500, times=-1))
    with pytest.raises(AllAttemptsFailed) as caught:
        await engine.chat(ask())
    s = scrape(metrics.registry)
    assert value(s, "turnout_requests_total",
                 {"route": "r", "status": caught.value.status, "stream": "false"}) == 1
    assert value(s, "turnout_failovers_total", {"route": "r", "reason": "server_error"}) == 1
    assert value(s, "turnout_attempts_total", {
        "deployment": B, "provider": "b", "kind": "fallback", "outcome": "error",
        "reason": "server_error"}) == 1
    assert "turnout_tokens_total" not in names(s)


async def test_unknown_model_names_do_not_become_labels(make_engine: EngineFactory) -> None:
    metrics = observed()
    engine = await make_engine(metrics)
    for i in range(3):
        with pytest.raises(ModelNotFound):
            await engine.chat(ask(model=f"client-chosen-{i}"))
    s = scrape(metrics.registry)
    assert value(s, "turnout_requests_total",
                 {"route": "(unknown)", "status": 404, "stream": "false"}) == 3
    routes = {dict(labels).get("route") for _, labels in s}
    assert not any(r and r.startswith("client-chosen") for r in routes)


async def test_breaker_state_gauge_follows_the_breaker(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], clock: FakeClock
) -> None:
    metrics = observed()
    engine = await make_engine(metrics)
    metrics.registry.register(StateCollector(engine.state))
    sims["a"].faults.add(Fault(kind="status", status=500, times=-1))
    trips_after = engine.state.breakers.breaker(A).settings.consecutive_failures
    for _ in range(trips_after):
        assert (await engine.chat(ask())).deployment.id == B
    s = scrape(metrics.registry)
    assert value(s, "turnout_breaker_state", {"deployment": A}) == 2  # open
    assert value(s, "turnout_breaker_state", {"deployment": B}) == 0  # closed
    assert value(s, "turnout_breaker_ejections", {"deployment": A}) == 1
    assert value(s, "turnout_breaker_ejections", {"deployment": B}) == 0
    assert value(s, "turnout_failovers_total",
                 {"route": "r", "reason": "server_error"}) == trips_after

    # Ejected: the next request goes straight to b, a is not attempted.
    assert (await engine.chat(ask())).deployment.id == B
    s = scrape(metrics.registry)
    assert value(s, "turnout_attempts_total", {
        "deployment": A, "provider": "a", "kind": "first", "outcome": "error",
        "reason": "server_error"}) == trips_after

    open_until = engine.state.breakers.snapshot()[A].open_until
    assert open_until is not None
    clock.advance(open_until - clock.monotonic())
    assert value(scrape(metrics.registry), "turnout_breaker_state", {"deployment": A}) == 1

    sims["a"].faults.clear()
    assert (await engine.chat(ask())).deployment.id == A  # the probe succeeds
    assert value(scrape(metrics.registry), "turnout_breaker_state", {"deployment": A}) == 0


async def test_cooldown_gauge_counts_down_a_retry_after(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator], clock: FakeClock
) -> None:
    engine = await make_engine()
    metrics = with_state(engine)
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "30"}))
    assert (await engine.chat(ask())).deployment.id == B
    s = scrape(metrics.registry)
    assert value(s, "turnout_deployment_cooldown_seconds", {"deployment": A}) == 30
    assert value(s, "turnout_deployment_cooldown_seconds", {"deployment": B}) == 0
    # A rate limit is not an outage: the breaker stays closed.
    assert value(s, "turnout_breaker_state", {"deployment": A}) == 0
    clock.advance(12)
    s = scrape(metrics.registry)
    assert value(s, "turnout_deployment_cooldown_seconds", {"deployment": A}) == 18
    clock.advance(100)
    s = scrape(metrics.registry)
    assert value(s, "turnout_deployment_cooldown_seconds", {"deployment": A}) == 0


async def _no_sleep(_: float) -> None:
    return None


def test_in_flight_gauge(runtime: RuntimeConfig) -> None:
    state = ResilienceState(FakeClock(), random.Random(1), _no_sleep)
    metrics = observed()
    metrics.registry.register(StateCollector(state))
    a, b = (runtime.deployments[i] for i in (A, B))
    assert value(scrape(metrics.registry), "turnout_deployment_in_flight",
                 {"deployment": A}) is None  # unknown until first used
    state.on_start(a, retry=False)
    state.on_start(a, retry=True)
    state.on_start(b, retry=False)
    s = scrape(metrics.registry)
    assert value(s, "turnout_deployment_in_flight", {"deployment": A}) == 2
    assert value(s, "turnout_deployment_in_flight", {"deployment": B}) == 1
    state.on_cancel(a)
    assert value(scrape(metrics.registry), "turnout_deployment_in_flight",
                 {"deployment": A}) == 1


def test_registering_the_collector_does_not_read_state() -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"state read at registration: {name}")

    registry = CollectorRegistry()
    registry.register(StateCollector(Untouchable()))  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        scrape(registry)  # ... but it is read at scrape time


def test_histogram_buckets_are_cumulative_and_span_ms_to_minutes() -> None:
    metrics = observed()
    for latency in (0.03, 0.3, 45.0, 900.0):
        metrics.on_request(RequestEvent("req", "r", None, False, 200, latency, 1))
    s = scrape(metrics.registry)
    labels = {"route": "r", "stream": "false"}

    def bucket(le: str) -> float | None:
        return value(s, "turnout_request_duration_seconds_bucket", {**labels, "le": le})

    assert bucket("0.025") == 0
    assert bucket("0.05") == 1
    assert bucket("0.5") == 2
    assert bucket("30.0") == 2
    assert bucket("60.0") == 3
    assert bucket("600.0") == 3
    assert bucket("+Inf") == 4
    assert value(s, "turnout_request_duration_seconds_count", labels) == 4
    assert value(s, "turnout_request_duration_seconds_sum", labels) == pytest.approx(945.33)


def test_cancelled_attempts_are_counted_but_not_timed() -> None:
    metrics = observed()
    event = AttemptEvent("req", "r", A, "a", "first", "cancelled", 12.0)
    metrics.on_attempt(event)
    metrics.on_attempt(event)
    s = scrape(metrics.registry)
    assert value(s, "turnout_attempts_total", {
        "deployment": A, "provider": "a", "kind": "first", "outcome": "cancelled",
        "reason": ""}) == 2
    assert value(s, "turnout_upstream_latency_seconds_count", {"deployment": A}) is None


def test_each_observer_has_its_own_registry() -> None:
    first, second = PrometheusObserver(), PrometheusObserver()
    assert first.registry is not second.registry
    first.on_failover(FailoverEvent("req", "r", A, B, "timeout"))
    assert value(scrape(first.registry), "turnout_failovers_total",
                 {"route": "r", "reason": "timeout"}) == 1
    assert value(scrape(second.registry), "turnout_failovers_total",
                 {"route": "r", "reason": "timeout"}) is None
    default = scrape(prometheus_client.REGISTRY)
    assert not any(name.startswith("turnout_") for name in names(default))
