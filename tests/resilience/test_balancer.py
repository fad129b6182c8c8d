import random
from collections import Counter
from collections.abc import Sequence

import pytest

from turnout.resilience.balancer import (
    STRATEGIES,
    CandidateSnapshot,
    Strategy,
    get_strategy,
    headroom,
    latency,
    least_in_flight,
    order_candidates,
    weighted,
)

DRAWS = 20000
"""With 20,000 draws a share's standard error is at most 0.0036: tolerances of 0.02 are
more than five standard errors, so a seeded run passes by a wide margin when correct."""


def cand(
    id: str, weight: float = 1.0, in_flight: int = 0, ewma: float | None = None,
    room: float | None = None,
) -> CandidateSnapshot:
    return CandidateSnapshot(
        id=id, weight=weight, in_flight=in_flight, ewma_latency_s=ewma, headroom=room
    )


def first_pick_shares(
    strategy: Strategy, candidates: Sequence[CandidateSnapshot], seed: int = 42
) -> dict[str, float]:
    rng = random.Random(seed)
    counts = Counter(strategy(candidates, rng)[0].id for _ in range(DRAWS))
    return {c.id: counts[c.id] / DRAWS for c in candidates}


CANDIDATES = [
    cand("a", weight=1.0, in_flight=3, ewma=0.5, room=0.2),
    cand("b", weight=2.0, in_flight=0, ewma=None, room=None),
    cand("c", weight=0.0, in_flight=1, ewma=2.0, room=0.0),
    cand("d", weight=5.0, in_flight=0, ewma=0.1, room=0.9),
]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_orders_every_candidate_exactly_once(name: str) -> None:
    rng = random.Random(1)
    for _ in range(200):
        ordered = order_candidates(name, CANDIDATES, rng)
        assert sorted(c.id for c in ordered) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_handles_zero_and_one_candidates(name: str) -> None:
    rng = random.Random(1)
    assert order_candidates(name, [], rng) == []
    assert order_candidates(name, CANDIDATES[:1], rng) == CANDIDATES[:1]


def test_weighted_respects_weights() -> None:
    shares = first_pick_shares(weighted, [cand("a", 1), cand("b", 2), cand("c", 7)])
    assert shares["a"] == pytest.approx(0.1, abs=0.02)
    assert shares["b"] == pytest.approx(0.2, abs=0.02)
    assert shares["c"] == pytest.approx(0.7, abs=0.02)


def test_weighted_second_place_follows_the_remaining_weights() -> None:
    # Sampling without replacement: given "c" (weight 7) first, "b" is second 2/3 of the time.
    rng = random.Random(7)
    seconds: Counter[str] = Counter()
    for _ in range(DRAWS):
        order = weighted([cand("a", 1), cand("b", 2), cand("c", 7)], rng)
        if order[0].id == "c":
            seconds[order[1].id] += 1
    total = sum(seconds.values())
    assert seconds["b"] / total == pytest.approx(2 / 3, abs=0.02)


def test_weighted_zero_weight_goes_last_unless_everything_is_zero() -> None:
    rng = random.Random(3)
    for _ in range(500):
        assert weighted([cand("z", 0.0), cand("a", 0.1)], rng)[-1].id == "z"
    shares = first_pick_shares(weighted, [cand("x", 0.0), cand("y", 0.0)])
    assert shares["x"] == pytest.approx(0.5, abs=0.02)


def test_weighted_tiny_weights_still_work() -> None:
    shares = first_pick_shares(weighted, [cand("a", 1e-6), cand("b", 3e-6)])
    assert shares["b"] == pytest.approx(0.75, abs=0.02)


def test_least_in_flight_picks_the_least_loaded() -> None:
    rng = random.Random(5)
    pool = [cand("a", in_flight=4), cand("b", in_flight=1), cand("c", in_flight=2)]
    for _ in range(100):
        assert [c.id for c in least_in_flight(pool, rng)] == ["b", "c", "a"]


def test_least_in_flight_breaks_ties_at_random() -> None:
    pool = [cand("a", in_flight=1), cand("b", in_flight=1), cand("c", in_flight=1),
            cand("d", in_flight=2)]
    shares = first_pick_shares(least_in_flight, pool)
    for key in "abc":
        assert shares[key] == pytest.approx(1 / 3, abs=0.02)
    assert shares["d"] == 0.0


def test_latency_p2c_prefers_faster() -> None:
    pool = [cand("fast", ewma=0.1), cand("mid", ewma=0.2), cand("slow", ewma=1.0)]
    shares = first_pick_shares(latency, pool)
    # Each of the 3 pairs is equally likely; a target wins every pair it is faster in.
    assert shares["fast"] == pytest.approx(2 / 3, abs=0.02)
    assert shares["mid"] == pytest.approx(1 / 3, abs=0.02)
    assert shares["slow"] == 0.0


def test_latency_fails_over_cheapest_first() -> None:
    rng = random.Random(11)
    pool = [cand("slow", ewma=1.0), cand("fast", ewma=0.1), cand("mid", ewma=0.2),
            cand("worst", ewma=3.0)]
    for _ in range(200):
        rest = [c.id for c in latency(pool, rng)[1:]]
        expected = [i for i in ["fast", "mid", "slow", "worst"] if i in rest]
        assert rest == expected


def test_latency_accounts_for_queued_calls() -> None:
    # 0.1 s but 9 calls queued (cost 1.0) loses to 0.3 s idle (cost 0.3).
    shares = first_pick_shares(latency, [cand("busy", in_flight=9, ewma=0.1),
                                         cand("idle", ewma=0.3)])
    assert shares["idle"] == 1.0


def test_latency_explores_unknown_targets() -> None:
    shares = first_pick_shares(latency, [cand("known", ewma=0.05), cand("new")])
    assert shares["new"] == 1.0
    pool = [cand("k1", ewma=0.05), cand("k2", ewma=0.06), cand("new")]
    assert first_pick_shares(latency, pool)["new"] == pytest.approx(2 / 3, abs=0.02)


def test_latency_ties_are_even() -> None:
    shares = first_pick_shares(latency, [cand("a", ewma=0.2), cand("b", ewma=0.2)])
    assert shares["a"] == pytest.approx(0.5, abs=0.02)


def test_headroom_prefers_more_headroom() -> None:
    shares = first_pick_shares(headroom, [cand("roomy", room=0.9), cand("tight", room=0.1)])
    assert shares["roomy"] == pytest.approx(0.9, abs=0.02)


def test_headroom_unknown_counts_as_full() -> None:
    shares = first_pick_shares(headroom, [cand("unknown"), cand("half", room=0.5)])
    assert shares["unknown"] == pytest.approx(2 / 3, abs=0.02)


def test_headroom_is_weighted() -> None:
    pool = [cand("a", weight=3.0, room=0.5), cand("b", weight=1.0, room=0.5)]
    assert first_pick_shares(headroom, pool)["a"] == pytest.approx(0.75, abs=0.02)


def test_headroom_exhausted_targets_stay_in_the_ordering() -> None:
    shares = first_pick_shares(headroom, [cand("empty", room=0.0), cand("full", room=1.0)])
    assert shares["empty"] < 0.02
    shares = first_pick_shares(headroom, [cand("e1", room=0.0), cand("e2", room=0.0)])
    assert shares["e1"] == pytest.approx(0.5, abs=0.02)


def test_dispatch_by_name_matches_the_function() -> None:
    assert get_strategy("weighted") is weighted
    first = order_candidates("latency", CANDIDATES, random.Random(9))
    second = latency(CANDIDATES, random.Random(9))
    assert first == second


def test_unknown_strategy_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="round_robin"):
        order_candidates("round_robin", CANDIDATES, random.Random(0))


def test_strategy_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        STRATEGIES["mine"] = weighted  # type: ignore[index]
