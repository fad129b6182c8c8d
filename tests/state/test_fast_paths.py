"""The inlined hot paths of the stores decide exactly as the plain definitions they replace:
GCRA admission (same floats, same states) and the one-pass validators (same error, or
none, as checking rule by rule)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from hypothesis import given
from hypothesis import strategies as st

from turnout.state import gcra
from turnout.state.budgets import Charge, _explain_charges, check_charges
from turnout.state.gcra import EPSILON_UNITS, terms
from turnout.state.limits import Admission, Limit, LimitState, _explain_limits, check_limits


def reference_decide(limits: Sequence[Limit], tats: Sequence[float],
                     now: float) -> tuple[Admission, list[float] | None]:
    """`gcra.decide` as first written, from `terms` and `_state`."""
    def state(limit: Limit, tat: float, retry_after: float) -> LimitState:
        interval = limit.interval_s
        used = max(tat - now, 0.0)
        remaining = math.floor((limit.burst * interval - used) / interval + EPSILON_UNITS)
        return LimitState(limit, min(max(remaining, 0), limit.burst), used, retry_after)

    def retry(limit: Limit, tat: float) -> float:
        if limit.cost > limit.burst:
            return math.inf
        interval = limit.interval_s
        return max(tat + limit.cost * interval - limit.burst * interval - now, 0.0)

    news: list[float] = []
    refused: list[bool] = []
    for limit, tat in zip(limits, tats, strict=True):
        increment, tolerance = terms(limit)
        new = tat + increment
        news.append(new)
        refused.append(new - tolerance - now > 0)
    if not any(refused):
        return Admission(True, tuple(state(limit, new, 0.0)
                                     for limit, new in zip(limits, news, strict=True))), news
    states = tuple(state(limit, tat, retry(limit, tat) if no else 0.0)
                   for limit, tat, no in zip(limits, tats, refused, strict=True))
    worst = max((s for s, no in zip(states, refused, strict=True) if no),
                key=lambda s: s.retry_after)
    return Admission(False, states, worst), None


@st.composite
def limit_sets(draw: st.DrawFn) -> tuple[list[Limit], list[float], float]:
    count = draw(st.integers(1, 4))
    now = draw(st.floats(0, 1e7, allow_nan=False))
    limits, tats = [], []
    for i in range(count):
        rate = draw(st.integers(1, 10**10))
        period = draw(st.sampled_from([1.0, 0.1, 60.0, 3600.0]) | st.floats(1e-3, 1e5))
        burst = draw(st.integers(1, 10**10))
        cost = draw(st.integers(0, 10**10) | st.integers(0, 5))
        limits.append(Limit(f"k{i}", rate, period, burst, cost))
        tats.append(now + draw(st.floats(0, 2 * period, allow_nan=False) | st.just(0.0)))
    return limits, tats, now


@given(limit_sets())
def test_decide_equals_its_reference(case: tuple[list[Limit], list[float], float]) -> None:
    limits, tats, now = case
    assert gcra.decide(limits, tats, now) == reference_decide(limits, tats, now)


def _error(check: Callable[..., object], *args: object) -> str | None:
    try:
        check(*args)
    except ValueError as exc:
        return str(exc)
    return None


awkward = st.sampled_from([0, 1, -1, 0.5, math.inf, -math.inf, math.nan, 2**53 - 1, 2**53])
keys = st.sampled_from(["", "a", "b"])


@given(st.lists(st.builds(Limit, keys, awkward, awkward, awkward, awkward), max_size=4))
def test_check_limits_raises_what_the_rules_say(limits: list[Limit]) -> None:
    assert _error(check_limits, limits) == _error(_explain_limits, limits)


@given(st.lists(st.builds(Charge, keys, awkward, awkward, st.none() | awkward), max_size=4),
       awkward)
def test_check_charges_raises_what_the_rules_say(charges: list[Charge], lease_s: float) -> None:
    assert _error(check_charges, charges, lease_s) == _error(_explain_charges, charges, lease_s)
