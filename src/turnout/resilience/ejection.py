"""The breakers of every deployment, and the cap on how much of a pool may be ejected.

Like Envoy's `max_ejection_percent`: when most of the deployments a request could fail
over to look broken at once, the likelier story is a shared cause (our network, a bad
request shape, a global provider incident) rather than many independent failures, and
ejecting them all would turn a partial outage into a total one. So at most
`max_ejected_share` of a pool stays ejected; beyond that, the ones ejected longest are
admitted again as half-open probes. The caller picks the pool (the engine: a request's
whole plan) and leaves a pool of one uncapped, since it has nowhere to fail over to.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from turnout.resilience.breaker import BreakerSettings, BreakerSnapshot, CircuitBreaker
from turnout.resilience.clock import Clock


class BreakerBoard:
    """One `CircuitBreaker` per deployment id, created on first use with the board's
    settings, or with the settings given at that first use (a route's own policy)."""

    __slots__ = ("_breakers", "_clock", "_settings")

    def __init__(self, settings: BreakerSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, deployment_id: str, settings: BreakerSettings | None = None
                ) -> CircuitBreaker:
        """The breaker of `deployment_id` (created closed on first use)."""
        found = self._breakers.get(deployment_id)
        if found is None:
            found = self._breakers[deployment_id] = CircuitBreaker(
                settings or self._settings, self._clock)
        return found

    __getitem__ = breaker

    def __contains__(self, deployment_id: object) -> bool:
        return deployment_id in self._breakers

    def __iter__(self) -> Iterator[str]:
        return iter(self._breakers)

    def __len__(self) -> int:
        return len(self._breakers)

    def admissible(self, ids: Sequence[str], max_ejected_share: float = 1.0) -> list[str]:
        """The ids (in their given order) whose breaker lets traffic through now, but with
        no more than `floor(max_ejected_share * len(ids))` of them ejected (OPEN): when more
        are, the ones open longest are moved to HALF_OPEN and admitted as probes.

        Nothing is reserved: the executor still calls `breaker(id).allow()` right before
        each attempt. A HALF_OPEN breaker whose probe slots are all taken is left out but
        is not counted as ejected (it is being probed, and cannot take more calls)."""
        admitted: list[str] = []
        ejected: list[CircuitBreaker] | None = None
        for deployment_id in ids:
            breaker = self.breaker(deployment_id)
            if breaker.is_available():
                admitted.append(deployment_id)
            elif breaker.is_ejected():
                if ejected is None:
                    ejected = []
                ejected.append(breaker)
        if ejected is None:
            return admitted
        allowed = math.floor(max(0.0, min(1.0, max_ejected_share)) * len(ids) + 1e-9)
        excess = len(ejected) - allowed
        if excess <= 0:
            return admitted
        # Longest-ejected first: the stalest verdicts are the likeliest to be wrong now.
        ejected.sort(key=_opened_at)
        for breaker in ejected[:excess]:
            breaker.end_ejection()
        # Rebuild in the caller's order (cheap: routes hold a handful of targets).
        return [i for i in ids if self._breakers[i].is_available()]

    def snapshot(self) -> dict[str, BreakerSnapshot]:
        """Every breaker's snapshot, by deployment id."""
        return {key: breaker.snapshot() for key, breaker in self._breakers.items()}


def _opened_at(breaker: CircuitBreaker) -> float:
    opened = breaker.opened_at
    return opened if opened is not None else math.inf
