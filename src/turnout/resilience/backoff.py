"""Backoff delays and the retry / fail-over / give-up decision.

Delays use exponential backoff with *full* jitter (a uniform draw between zero and the
exponential ceiling), which spreads synchronized clients best for the least total wait.
An upstream's own `Retry-After` is a floor: we never come back sooner than asked.

The decision is a pure function of the facts the executor already has, so the executor's
loop stays a thin `match` over three outcomes and every policy edge is table-tested here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from turnout.resilience.clock import RandomSource

_MAX_EXPONENT = 64
"""2**64 times any sane base exceeds any sane cap; clamping avoids float overflow."""


@dataclass(frozen=True, slots=True)
class BackoffSettings:
    """How long to wait between attempts on the same target."""

    base_s: float = 0.5
    """Ceiling of the first retry's delay; doubles with each further retry."""
    cap_s: float = 8.0
    """The ceiling never grows past this."""
    max_retry_after_s: float | None = 10.0
    """Longest wait (backoff or upstream `Retry-After`) worth sitting out while another
    target could serve the request now; longer waits fail over at once. `None`: no limit.
    Without another target, only the deadline bounds the wait."""
    min_attempt_s: float = 0.0
    """Time an attempt needs to be worth starting: a wait that would leave less than this
    before the deadline is not taken, and neither is a fail-over."""

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0 or self.min_attempt_s < 0:
            raise ValueError("backoff durations must be >= 0")
        if self.max_retry_after_s is not None and self.max_retry_after_s < 0:
            raise ValueError("max_retry_after_s must be >= 0 or None")


def backoff_delay(retry_index: int, settings: BackoffSettings, rng: RandomSource) -> float:
    """Full-jitter delay before retry number `retry_index` (0 for the first retry):
    uniform in [0, min(cap, base * 2**retry_index))."""
    ceiling = min(settings.cap_s, settings.base_s * 2.0 ** min(max(retry_index, 0), _MAX_EXPONENT))
    return rng.random() * ceiling


def retry_delay(
    retry_index: int, retry_after: float | None, settings: BackoffSettings, rng: RandomSource
) -> float:
    """The delay before retry `retry_index`: the jittered backoff, but never less than the
    upstream's requested `retry_after` seconds (which may exceed the cap: the decision
    function, not this one, judges whether such a wait is worth it)."""
    delay = backoff_delay(retry_index, settings, rng)
    if retry_after is not None and retry_after > delay:
        return retry_after
    return delay


def should_wait(
    delay: float,
    remaining_deadline: float | None,
    max_wait: float | None = None,
    min_attempt_s: float = 0.0,
) -> bool:
    """Whether sleeping `delay` seconds and trying again is still sensible: the wait must
    leave at least `min_attempt_s` (and some time at all) before the deadline
    (`remaining_deadline` seconds away, `None` for no deadline) and must not exceed
    `max_wait` (pass the `max_retry_after_s` setting when a fallback exists, else `None`)."""
    if max_wait is not None and delay > max_wait:
        return False
    if remaining_deadline is None:
        return True
    return remaining_deadline - delay > min_attempt_s


class Action(enum.Enum):
    """What the executor does after a failed attempt."""

    RETRY_AFTER_WAIT = "retry_after_wait"
    """Sleep `RetryDecision.delay`, then try the same target again."""
    FAIL_OVER = "fail_over"
    """Move to the next target at once, without sleeping."""
    GIVE_UP = "give_up"
    """Stop; raise the error (or the aggregate of every attempt)."""


class Reason(enum.Enum):
    """Why a decision was taken: for the attempt log, metrics and tests."""

    RETRYABLE = "retryable"
    NOT_RETRYABLE = "not_retryable"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    BUDGET_EXHAUSTED = "budget_exhausted"
    WAIT_TOO_LONG = "wait_too_long"
    """The wait exceeds `max_retry_after_s` while another target exists."""
    DEADLINE = "deadline"
    """The wait (or any further attempt) would not fit before the deadline."""


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """An `Action` and, for `RETRY_AFTER_WAIT`, the seconds to sleep first."""

    action: Action
    reason: Reason
    delay: float = 0.0


def decide(
    *,
    retryable: bool,
    attempts_made: int,
    max_attempts: int,
    delay: float,
    remaining_deadline: float | None,
    has_next_target: bool,
    budget_allows: bool | Callable[[], bool],
    max_retry_after_s: float | None = None,
    min_attempt_s: float = 0.0,
) -> RetryDecision:
    """Decide what follows a failed attempt on one target.

    - `retryable`: the error's taxonomy flag. Non-retryable errors (caller errors such as
      invalid requests) are never retried nor sent down the fallback chain: `GIVE_UP`.
    - `attempts_made`: attempts already made on this target, the failed one included;
      `max_attempts` is the per-target limit (1 means no retry on the same target).
    - `delay`: from `retry_delay` (already includes the upstream's `Retry-After`).
    - `remaining_deadline`: seconds left of the request's total deadline, `None` if none.
    - `has_next_target`: another deployment or fallback is left to try.
    - `budget_allows`: whether the target's retry budget grants a retry. Pass the budget's
      `try_acquire_retry` method itself: it is called only once every other check allows a
      retry, so the budget is never spent on a retry that does not happen.
    - `max_retry_after_s`, `min_attempt_s`: from `BackoffSettings`.

    Retrying the same target wins when allowed and the wait is acceptable; otherwise the
    request fails over at once if another target exists and time is left, else gives up.
    """
    if not retryable:
        return RetryDecision(Action.GIVE_UP, Reason.NOT_RETRYABLE)
    if remaining_deadline is not None and remaining_deadline <= min_attempt_s:
        return RetryDecision(Action.GIVE_UP, Reason.DEADLINE)
    if attempts_made >= max_attempts:
        reason = Reason.ATTEMPTS_EXHAUSTED
    elif not should_wait(delay, remaining_deadline, None, min_attempt_s):
        reason = Reason.DEADLINE
    elif has_next_target and not should_wait(delay, None, max_retry_after_s):
        reason = Reason.WAIT_TOO_LONG
    elif not (budget_allows() if callable(budget_allows) else budget_allows):
        reason = Reason.BUDGET_EXHAUSTED
    else:
        return RetryDecision(Action.RETRY_AFTER_WAIT, Reason.RETRYABLE, delay)
    if has_next_target:
        return RetryDecision(Action.FAIL_OVER, reason)
    return RetryDecision(Action.GIVE_UP, reason)
