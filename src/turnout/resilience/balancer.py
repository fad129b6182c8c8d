"""Load-balancing strategies: pure functions from candidates and a random source to an
ORDERING of every candidate. The first is the pick; the rest is the order to fail over in
within the same priority tier, so one call answers both "where first" and "where next".

Candidates are anything with `id`, `weight`, `in_flight`, `ewma_latency_s` and `headroom`
(`HealthSnapshot`, alias `CandidateSnapshot`, fits). Routes hold a handful of targets, so
each strategy is a sort of a few items; none keeps state between calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol, TypeVar

from turnout.resilience.clock import RandomSource
from turnout.resilience.health import HealthSnapshot

CandidateSnapshot = HealthSnapshot
"""The concrete candidate type: a deployment's health snapshot (see `DeploymentHealth`)."""


class Candidate(Protocol):
    """What the strategies read from a candidate deployment."""

    @property
    def id(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def ewma_latency_s(self) -> float | None: ...
    @property
    def headroom(self) -> float | None: ...


C = TypeVar("C", bound=Candidate)



class Strategy(Protocol):
    """A balancing strategy: an ordering of every candidate, best first."""

    def __call__(self, candidates: Sequence[C], rng: RandomSource, /) -> list[C]: ...


_MIN_HEADROOM = 0.01
"""Exhausted deployments keep a sliver of weight: they stay in the ordering, and the first
pick still lands on them when every candidate is exhausted."""


def _weighted_order(
    candidates: Sequence[C], rng: RandomSource, weight_of: Callable[[C], float]
) -> list[C]:
    """Weighted random sampling without replacement (Efraimidis-Spirakis): each candidate
    draws the key log(u) / w and the keys are sorted descending, so a candidate comes first
    with probability w / sum(w), and so on down the list. Zero weights go last, shuffled."""
    keyed: list[tuple[float, int, C]] = []
    zero: list[C] = []
    for index, candidate in enumerate(candidates):
        weight = weight_of(candidate)
        if weight > 0:
            u = rng.random()
            # u is in [0, 1): guard log(0) on the (vanishingly rare) zero draw.
            keyed.append((math.log(u) / weight if u > 0 else -math.inf, index, candidate))
        else:
            zero.append(candidate)
    keyed.sort(key=_key_desc)
    if len(zero) > 1:
        _shuffle(zero, rng)
    return [c for _, _, c in keyed] + zero


def _key_desc(item: tuple[float, int, Candidate]) -> tuple[float, int]:
    return (-item[0], item[1])


def _shuffle(items: list[C], rng: RandomSource) -> None:
    """Fisher-Yates with only `rng.random()` (the one method a RandomSource has)."""
    for i in range(len(items) - 1, 0, -1):
        j = min(int(rng.random() * (i + 1)), i)
        items[i], items[j] = items[j], items[i]


def weighted(candidates: Sequence[C], rng: RandomSource) -> list[C]:
    """Weighted random: first pick with probability proportional to `weight`."""
    return _weighted_order(candidates, rng, _weight)


def _weight(candidate: Candidate) -> float:
    return candidate.weight


def least_in_flight(candidates: Sequence[C], rng: RandomSource) -> list[C]:
    """Fewest calls in flight first; ties broken at random (so equal targets share load)."""
    keyed = [(c.in_flight, rng.random(), i, c) for i, c in enumerate(candidates)]
    keyed.sort(key=_first_three)
    return [item[3] for item in keyed]


def _first_three(item: tuple[int, float, int, Candidate]) -> tuple[int, float, int]:
    return (item[0], item[1], item[2])


def _latency_cost(candidate: Candidate) -> float:
    """Expected wait: EWMA latency scaled by the queue it would join (Finagle's load-aware
    p2c), so a burst does not herd onto the single fastest target. Unknown latency costs
    nothing: a new or recovered target gets traffic and thereby a measurement."""
    latency = candidate.ewma_latency_s
    if latency is None:
        return 0.0
    return latency * (candidate.in_flight + 1)


def latency(candidates: Sequence[C], rng: RandomSource) -> list[C]:
    """Power of two choices: two distinct candidates drawn at random, the cheaper (by
    `_latency_cost`) is the pick; the rest follow cheapest first. Random pairs keep a
    slightly slower target in use instead of piling everything on the fastest."""
    n = len(candidates)
    if n < 2:
        return list(candidates)
    a = min(int(rng.random() * n), n - 1)
    b = min(int(rng.random() * (n - 1)), n - 2)
    if b >= a:
        b += 1  # b is drawn from the other n - 1 indexes
    cost_a, cost_b = _latency_cost(candidates[a]), _latency_cost(candidates[b])
    # On a tie keep `a`: it is itself a uniform draw, so ties are already broken at random.
    pick = b if cost_b < cost_a else a
    rest = [(_latency_cost(c), i, c) for i, c in enumerate(candidates) if i != pick]
    rest.sort(key=_cost_index)
    return [candidates[pick], *(c for _, _, c in rest)]


def _cost_index(item: tuple[float, int, Candidate]) -> tuple[float, int]:
    return (item[0], item[1])


def headroom(candidates: Sequence[C], rng: RandomSource) -> list[C]:
    """Weighted random by `weight * headroom`: targets with more of their rate limit left
    get proportionally more traffic. Unknown headroom counts as 1.0 (full)."""
    return _weighted_order(candidates, rng, _headroom_weight)


def _headroom_weight(candidate: Candidate) -> float:
    room = candidate.headroom
    return candidate.weight * max(_MIN_HEADROOM, 1.0 if room is None else room)


STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    "weighted": weighted,
    "least_in_flight": least_in_flight,
    "latency": latency,
    "headroom": headroom,
})
"""Every strategy by its config name (read-only)."""


def get_strategy(name: str) -> Strategy:
    """The strategy called `name` (resolve once when compiling config); ValueError if
    unknown."""
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown balancing strategy {name!r} (known: {known})") from None


def order_candidates(name: str, candidates: Sequence[C], rng: RandomSource) -> list[C]:
    """Order `candidates` with the strategy called `name`."""
    return get_strategy(name)(candidates, rng)
