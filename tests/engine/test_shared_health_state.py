"""The resilience state's side of shared health, without Redis: which local changes it
reports to its peers, and how a peer's event is mirrored into routing decisions."""

from __future__ import annotations

import random

import pytest

from turnout.config.policies import BreakerPolicy
from turnout.core.errors import RateLimited, ServerError, TurnoutError
from turnout.engine.state import ResilienceState
from turnout.providers.types import Deployment
from turnout.resilience.breaker import BreakerState
from turnout.resilience.clock import FakeClock
from turnout.state.health import HealthEvent

POLICY = BreakerPolicy(consecutive_failures=2, failure_rate_threshold=None,
                       base_ejection_s=10, max_ejection_s=60)


class Recorder:
    """A `HealthSink` that remembers what it was told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str, float, int]] = []

    def breaker_opened(self, deployment: str, until: float, times_ejected: int) -> None:
        self.told.append(("open", deployment, until, times_ejected))

    def breaker_closed(self, deployment: str) -> None:
        self.told.append(("closed", deployment, 0.0, 0))

    def cooled_down(self, deployment: str, until: float) -> None:
        self.told.append(("cooldown", deployment, until, 0))


def deployment(name: str = "a") -> Deployment:
    return Deployment(id=f"{name}/m", provider=name, dialect="openai_chat",
                      target=None)  # type: ignore[arg-type]


def upstream(error: TurnoutError) -> TurnoutError:
    error.origin = "upstream"
    return error


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(500.0)


@pytest.fixture
def state(clock: FakeClock) -> ResilienceState:
    state = ResilienceState(clock, random.Random(1), lambda _: None, POLICY)
    state.peers = Recorder()
    return state


def told(state: ResilienceState) -> list[tuple[str, str, float, int]]:
    assert isinstance(state.peers, Recorder)
    return state.peers.told


def test_a_trip_is_reported_with_its_end_and_count(state: ResilienceState) -> None:
    d = deployment()
    state.on_failure(d, upstream(ServerError("boom")), 0.1)
    assert told(state) == []
    state.on_failure(d, upstream(ServerError("boom")), 0.1)
    assert told(state) == [("open", "a/m", 510.0, 1)]
    state.on_failure(d, upstream(ServerError("boom")), 0.1)  # already open: nothing new
    assert len(told(state)) == 1


def test_a_stream_failure_trips_and_reports_too(state: ResilienceState,
                                                clock: FakeClock) -> None:
    d = deployment()
    for _ in range(2):
        state.on_stream_end(d, upstream(ServerError("cut")), 0.1)
    assert told(state) == [("open", "a/m", 510.0, 1)]
    clock.advance(10)
    assert state.allow(d)
    state.on_stream_end(d, None, 0.1)
    assert told(state)[-1] == ("closed", "a/m", 0.0, 0)


def test_a_probe_success_is_reported_as_closed(state: ResilienceState,
                                               clock: FakeClock) -> None:
    d = deployment()
    for _ in range(2):
        state.on_failure(d, upstream(ServerError("boom")), 0.1)
    clock.advance(10)
    assert state.allow(d)
    state.on_success(d, {}, 0.1)
    assert told(state)[-1] == ("closed", "a/m", 0.0, 0)
    state.on_success(d, {}, 0.1)  # closed already: nothing more
    assert len(told(state)) == 2


def test_a_429_cooldown_is_reported_with_its_end(state: ResilienceState) -> None:
    state.on_failure(deployment(), upstream(RateLimited("slow down", retry_after=7.0)), 0.1)
    assert told(state) == [("cooldown", "a/m", 507.0, 0)]


def test_nothing_is_reported_without_peers(clock: FakeClock) -> None:
    state = ResilienceState(clock, random.Random(1), lambda _: None, POLICY)
    d = deployment()
    for _ in range(2):
        state.on_failure(d, upstream(ServerError("boom")), 0.1)
    state.on_failure(d, upstream(RateLimited("x", retry_after=1.0)), 0.1)
    assert state.breakers.breaker(d.id).state is BreakerState.OPEN


def test_a_peers_ejection_makes_routing_skip_the_deployment(state: ResilienceState,
                                                            clock: FakeClock) -> None:
    d = deployment()
    assert state.apply_peer(HealthEvent("open", d.id, 20.0, 2, "peer"), POLICY)
    assert not state.available(d)
    assert not state.allow(d)
    assert told(state) == []  # a peer's change is never reported back
    breaker = state.breakers.breaker(d.id)
    assert breaker.settings.base_ejection_s == 10  # created with the policy given
    clock.advance(20)
    assert state.available(d)  # then half open, like a local ejection


def test_a_peers_ejection_is_capped_at_our_longest(state: ResilienceState,
                                                   clock: FakeClock) -> None:
    d = deployment()
    state.apply_peer(HealthEvent("open", d.id, 3600.0, 9, "peer"), POLICY)
    assert state.breakers.breaker(d.id).open_until == clock.monotonic() + 60


def test_a_peers_probe_closes_our_breaker(state: ResilienceState) -> None:
    d = deployment()
    for _ in range(2):
        state.on_failure(d, upstream(ServerError("boom")), 0.1)
    assert state.apply_peer(HealthEvent("closed", d.id, replica="peer"), POLICY)
    assert state.available(d)
    assert not state.apply_peer(HealthEvent("closed", d.id, replica="peer"), POLICY)


def test_a_peers_cooldown_only_lengthens_ours(state: ResilienceState,
                                             clock: FakeClock) -> None:
    d = deployment()
    assert state.apply_peer(HealthEvent("cooldown", d.id, 5.0, replica="peer"), POLICY)
    assert state.cooldown_until[d.id] == 505.0
    assert not state.apply_peer(HealthEvent("cooldown", d.id, 2.0, replica="peer"), POLICY)
    assert state.cooldown_until[d.id] == 505.0
    assert not state.apply_peer(HealthEvent("cooldown", "b/m", 0.0, replica="p"), POLICY)
    assert "b/m" not in state.cooldown_until
