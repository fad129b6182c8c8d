"""GCRA, the generic cell rate algorithm, as pure functions shared by every store.

Each key stores one number, its theoretical arrival time (TAT): the time at which the
bucket would be full again. With `T = period_s / rate` seconds per unit and a burst of `B`
units, a request costing `c` units at time `now` is admitted when

    max(TAT, now) + c*T - B*T <= now

and then the key's TAT becomes `max(TAT, now) + c*T`. Everything the `x-ratelimit-*`
headers need follows exactly from that one number: the wait before admission, the units
left, and the time to a full bucket. There is no background refill and no per-unit state.

The Redis store evaluates the same inequality in Lua, on the same doubles: `terms` computes
each limit's increment and tolerance once in Python and both stores use those very numbers,
so both decide alike on every input, boundaries included. The tolerance admits a request
that is short by a millionth of a unit, so that sums of inexact intervals (0.1 s is not a
binary fraction) do not refuse a request that arrives exactly on time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from turnout.state.limits import Admission, Limit, LimitState

EPSILON_UNITS = 1e-6
"""How short of a unit a request may be and still pass (float rounding, not policy)."""


def terms(limit: Limit) -> tuple[float, float]:
    """(increment, tolerance) of a limit: the TAT advances by `increment` on admission, and
    a request is admitted while its new TAT is at most `tolerance` ahead of now."""
    interval = limit.interval_s
    return limit.cost * interval, (limit.burst + EPSILON_UNITS) * interval


def decide(limits: Sequence[Limit], tats: Sequence[float],
           now: float) -> tuple[Admission, list[float] | None]:
    """The admission for `limits` given each key's TAT, already raised to `now`
    (`max(stored, now)`, or `now` for a key never seen), and each key's new TAT when
    admitted (None when refused: nothing changes)."""
    # The same float operations as `terms` and `_state`, inlined: this runs per request.
    news: list[float] = []
    states: list[LimitState] = []
    for limit, tat in zip(limits, tats, strict=True):
        interval = limit.period_s / limit.rate
        new = tat + limit.cost * interval
        if new - (limit.burst + EPSILON_UNITS) * interval - now > 0:
            return _refused(limits, tats, now)
        news.append(new)
        used = new - now
        if used < 0.0:
            used = 0.0
        burst = limit.burst
        remaining = math.floor((burst * interval - used) / interval + EPSILON_UNITS)
        if remaining < 0:
            remaining = 0
        states.append(LimitState(limit, burst if burst < remaining else remaining, used, 0.0))
    return Admission(True, tuple(states)), news


def _refused(limits: Sequence[Limit], tats: Sequence[float], now: float
             ) -> tuple[Admission, None]:
    """A refusal: every limit's state (retry times for the refused ones), nothing taken."""
    refused = [tat + increment - tolerance - now > 0
               for tat, (increment, tolerance) in zip(tats, map(terms, limits), strict=True)]
    states = tuple(_state(limit, tat, now, _retry_after(limit, tat, now) if no else 0.0)
                   for limit, tat, no in zip(limits, tats, refused, strict=True))
    worst = max((s for s, no in zip(states, refused, strict=True) if no),
                key=lambda s: s.retry_after)
    return Admission(False, states, worst), None


def _retry_after(limit: Limit, tat: float, now: float) -> float:
    """The exact wait before a refused limit admits, without the rounding slack."""
    if limit.cost > limit.burst:
        return math.inf
    interval = limit.interval_s
    return max(tat + limit.cost * interval - limit.burst * interval - now, 0.0)


def _state(limit: Limit, tat: float, now: float, retry_after: float) -> LimitState:
    interval = limit.interval_s
    used = max(tat - now, 0.0)
    remaining = math.floor((limit.burst * interval - used) / interval + EPSILON_UNITS)
    return LimitState(limit, min(max(remaining, 0), limit.burst), used, retry_after)
