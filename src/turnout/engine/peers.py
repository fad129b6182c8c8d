"""The engine's side of shared health: which `SharedHealth` a config asks for, and how a
peer's event finds the local breaker it applies to (see `turnout.state.health`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from turnout.config.policies import BreakerPolicy
from turnout.config.runtime import RuntimeConfig
from turnout.engine.state import ResilienceState
from turnout.stages.resources import StageResources
from turnout.state.health import Applied, HealthEvent, LocalHealth, SharedHealth


class PeerMirror:
    """Applies peers' events to one engine's resilience state, under its current config."""

    __slots__ = ("_policies", "_runtime", "_state")

    def __init__(self, state: ResilienceState, runtime: Callable[[], RuntimeConfig]) -> None:
        self._state = state
        self._runtime = runtime
        self._policies: tuple[RuntimeConfig, Mapping[str, BreakerPolicy]] | None = None

    def __call__(self, event: HealthEvent) -> Applied:
        """`applied`, `unchanged`, or `unknown` for a deployment this config lacks."""
        policy = self._breaker_policies().get(event.deployment)
        if policy is None:
            return "unknown"
        return "applied" if self._state.apply_peer(event, policy) else "unchanged"

    def _breaker_policies(self) -> Mapping[str, BreakerPolicy]:
        """Each deployment's breaker policy: its first route's, as in `admit` (computed
        once per config)."""
        runtime = self._runtime()
        cached = self._policies
        if cached is not None and cached[0] is runtime:
            return cached[1]
        found: dict[str, BreakerPolicy] = {}
        for route in runtime.routes.values():
            for deployment in route.deployments:
                found.setdefault(deployment.id, route.policy.breaker)
        self._policies = (runtime, found)
        return found


def shared_health(runtime: RuntimeConfig, state: ResilienceState,
                  resources: StageResources, mirror: PeerMirror) -> SharedHealth:
    """The shared health `runtime.state` asks for, set as `state.peers` (None for none)."""
    settings = runtime.state
    if settings.redis_url is None:
        state.peers = None
        return LocalHealth()
    from turnout.state.redis_health import RedisSharedHealth  # redis-py only when used

    shared = RedisSharedHealth(resources.redis(settings.redis_url), mirror,
                               prefix=settings.prefix, clock=state.clock)
    state.peers = shared
    return shared
