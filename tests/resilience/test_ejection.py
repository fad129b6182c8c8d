import math
import random

import pytest

from turnout.resilience.breaker import BreakerSettings, BreakerState
from turnout.resilience.clock import FakeClock
from turnout.resilience.ejection import BreakerBoard

SETTINGS = BreakerSettings(
    consecutive_failures=1, failure_rate_threshold=None, base_ejection_s=60.0,
    max_ejection_s=600.0,
)


def trip(board: BreakerBoard, deployment_id: str) -> None:
    breaker = board.breaker(deployment_id)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_breakers_are_created_lazily_and_kept() -> None:
    board = BreakerBoard(SETTINGS, FakeClock())
    assert "a" not in board and len(board) == 0
    first = board.breaker("a")
    assert board["a"] is first
    assert list(board) == ["a"]
    assert set(board.snapshot()) == {"a"}


def test_all_healthy_are_admitted_in_order() -> None:
    board = BreakerBoard(SETTINGS, FakeClock())
    assert board.admissible(["c", "a", "b"], 0.5) == ["c", "a", "b"]


def test_ejections_within_the_cap_stay_ejected() -> None:
    board = BreakerBoard(SETTINGS, FakeClock())
    trip(board, "b")
    trip(board, "c")
    assert board.admissible(["a", "b", "c", "d"], 0.5) == ["a", "d"]
    assert board.breaker("b").state is BreakerState.OPEN


def test_beyond_the_cap_the_longest_ejected_are_admitted_as_probes() -> None:
    clock = FakeClock()
    board = BreakerBoard(SETTINGS, clock)
    for deployment_id in ["c", "a", "b"]:  # c is ejected first, b last
        trip(board, deployment_id)
        clock.advance(1.0)
    # 4 targets, share 0.5: at most 2 ejected, so 1 of the 3 comes back: the oldest, c.
    assert board.admissible(["a", "b", "c", "d"], 0.5) == ["c", "d"]
    assert board.breaker("c").state is BreakerState.HALF_OPEN
    assert board.breaker("a").state is BreakerState.OPEN
    # The admitted one takes a probe through the normal path.
    assert board.breaker("c").allow()
    assert not board.breaker("c").allow()


def test_a_failed_forced_probe_is_ejected_again_for_longer() -> None:
    clock = FakeClock()
    board = BreakerBoard(SETTINGS, clock)
    trip(board, "a")
    trip(board, "b")
    assert board.admissible(["a", "b"], 0.5) == ["a"]
    breaker = board.breaker("a")
    assert breaker.allow()
    breaker.record_failure()
    snap = breaker.snapshot()
    assert snap.times_ejected == 2
    assert snap.open_until == pytest.approx(clock.monotonic() + 120.0)


def test_full_share_allows_ejecting_everything() -> None:
    board = BreakerBoard(SETTINGS, FakeClock())
    trip(board, "a")
    trip(board, "b")
    assert board.admissible(["a", "b"], 1.0) == []


def test_zero_share_ejects_nothing() -> None:
    board = BreakerBoard(SETTINGS, FakeClock())
    trip(board, "a")
    assert board.admissible(["a"], 0.0) == ["a"]


def test_the_cap_is_per_call_not_global() -> None:
    board = BreakerBoard(SETTINGS, FakeClock())
    trip(board, "x")
    # In a route of one target with share 0.5, nothing may be ejected...
    assert board.admissible(["x"], 0.5) == ["x"]
    # ...which re-admitted x as a half-open probe for everyone.
    assert board.breaker("x").state is BreakerState.HALF_OPEN


@pytest.mark.parametrize("seed", range(40))
def test_never_more_than_the_share_is_ejected(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    board = BreakerBoard(SETTINGS, clock)
    n = rng.randint(1, 9)
    ids = [f"d{i}" for i in range(n)]
    broken = [i for i in ids if rng.random() < 0.7]
    for deployment_id in broken:
        trip(board, deployment_id)
        clock.advance(rng.random())
    share = rng.choice([0.0, 0.1, 0.25, 0.34, 0.5, 0.75, 0.9, 1.0])
    admitted = board.admissible(ids, share)
    assert admitted == [i for i in ids if i in set(admitted)]  # caller's order kept
    ejected = n - len(admitted)
    assert ejected <= math.floor(share * n + 1e-9)
    # And no more is re-admitted than needed.
    assert ejected == min(len(broken), math.floor(share * n + 1e-9))
