"""The attempt loop: breaker-aware ordering, retries with backoff, fallback, deadlines.

Non-stream and stream calls share one loop; they differ only in the `AttemptFn` that runs
one attempt (a full call, or a stream opened and peeked up to its first content).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from turnout.config.policies import RoutePolicy, fallback_reason
from turnout.core.errors import (
    AllAttemptsFailed,
    Attempt,
    AttemptKind,
    ContextWindowExceeded,
    TurnoutError,
    UnsupportedFeature,
    UpstreamTimeout,
)
from turnout.core.request import ChatRequest
from turnout.engine.context import CallContext
from turnout.engine.observe import AttemptEvent, FailoverEvent, Observers
from turnout.engine.plan import Candidate
from turnout.engine.state import ResilienceState
from turnout.engine.tokens import estimate_prompt_tokens
from turnout.engine.upstream import AttemptTimeouts
from turnout.resilience.backoff import Action, BackoffSettings, decide, retry_delay

T = TypeVar("T")
AttemptFn = Callable[[Candidate, AttemptTimeouts], Awaitable[T]]
FailoverHook = Callable[[TurnoutError, Candidate], None]


@dataclass(slots=True)
class Success(Generic[T]):
    candidate: Candidate
    value: T
    plan_index: int


class Executor:
    """Runs a request's plan. Shared by every request; holds no per-request state."""

    def __init__(self, state: ResilienceState, on_failover: FailoverHook | None = None,
                 observers: Observers | None = None) -> None:
        self.state = state
        self.on_failover = on_failover
        self.observers = observers or Observers()

    async def run(
        self, plan: list[Candidate], request: ChatRequest, ctx: CallContext,
        attempt: AttemptFn[T], *, start: int = 0,
    ) -> Success[T]:
        """Try `plan[start:]` until one attempt succeeds. Raises the caller's error at once
        for errors no other target can fix, else `AllAttemptsFailed` with every attempt."""
        policy = plan[0].route.policy if plan else RoutePolicy()
        clock = self.state.clock
        deadline = _deadline(clock.monotonic(), policy, ctx)
        admitted = self.state.admit(plan)
        min_context = _min_context(request, plan)
        unsupported: UnsupportedFeature | None = None
        total = 0
        for index in range(start, len(plan)):
            candidate = plan[index]
            info = candidate.deployment.info
            if index not in admitted or (min_context and info.context_window is not None
                                         and info.context_window < min_context):
                continue
            if not self.state.allow(candidate.deployment):
                continue
            tries = 0
            while True:
                remaining = None if deadline is None else deadline - clock.monotonic()
                if remaining is not None and remaining <= 0:
                    raise self._exhausted(ctx, unsupported, timed_out=True)
                if total >= policy.retry.max_attempts_total:
                    raise self._exhausted(ctx, unsupported)
                kind: AttemptKind = "first" if total == 0 else (
                    "retry" if tries else "fallback")
                tries += 1
                total += 1
                started = clock.monotonic()
                self.state.on_start(candidate.deployment, retry=kind == "retry")
                try:
                    value = await attempt(candidate, _timeouts(policy, remaining))
                except UnsupportedFeature as error:
                    # This target cannot express the request; another may. Not a health issue.
                    self.state.on_cancel(candidate.deployment)
                    unsupported = unsupported or error
                    total -= 1
                    break
                except TurnoutError as error:
                    latency = clock.monotonic() - started
                    self.state.on_failure(candidate.deployment, error, latency)
                    ctx.attempts.append(Attempt(candidate.deployment.id, "error", error,
                                                latency, kind))
                    if self.observers:
                        self._emit(ctx, candidate, request, ctx.attempts[-1])
                    action = self._next_action(error, candidate, policy, tries, remaining,
                                               has_next=_has_next(plan, index, admitted))
                    if isinstance(error, ContextWindowExceeded):
                        # Only a target with a larger window can help.
                        window = info.context_window or estimate_prompt_tokens(request)
                        min_context = max(min_context, window + 1)
                    if action is None:
                        raise error from None
                    if action.action is Action.RETRY_AFTER_WAIT:
                        await self.state.sleep(action.delay)
                        continue
                    if action.action is Action.GIVE_UP:
                        raise self._exhausted(ctx, unsupported) from None
                    self._notify_failover(ctx, error, plan, index, admitted)
                    break
                except asyncio.CancelledError:
                    self.state.on_cancel(candidate.deployment)
                    ctx.attempts.append(Attempt(candidate.deployment.id, "cancelled",
                                                None, clock.monotonic() - started, kind))
                    if self.observers:
                        self._emit(ctx, candidate, request, ctx.attempts[-1])
                    raise
                ctx.attempts.append(Attempt(candidate.deployment.id, "ok", None,
                                            clock.monotonic() - started, kind))
                if self.observers:
                    self._emit(ctx, candidate, request, ctx.attempts[-1])
                return Success(candidate, value, index)
        raise self._exhausted(ctx, unsupported)

    def _next_action(
        self, error: TurnoutError, candidate: Candidate, policy: RoutePolicy, tries: int,
        remaining: float | None, *, has_next: bool,
    ) -> _Decision | None:
        """None: raise this error to the caller as it is (nobody else can fix it)."""
        reason = fallback_reason(error)
        if error.origin != "upstream" or reason is None:
            return None
        if reason not in policy.fallback_on:
            return None
        retry = policy.retry
        if isinstance(error, ContextWindowExceeded):
            return _Decision(Action.FAIL_OVER if has_next else Action.GIVE_UP)
        settings = BackoffSettings(base_s=retry.base_delay_s, cap_s=retry.max_delay_s,
                                   max_retry_after_s=retry.max_retry_after_s)
        delay = retry_delay(tries - 1, error.retry_after, settings, self.state.rng)
        decision = decide(
            retryable=error.retryable, attempts_made=tries,
            max_attempts=retry.max_attempts_per_target, delay=delay,
            remaining_deadline=remaining, has_next_target=has_next,
            budget_allows=lambda: self.state.try_retry(candidate.deployment, retry),
            max_retry_after_s=retry.max_retry_after_s,
        )
        if not error.retryable:  # e.g. a provider-key 401: not worth retrying, may fail over
            return _Decision(Action.FAIL_OVER if has_next else Action.GIVE_UP)
        return _Decision(decision.action, decision.delay)

    def _notify_failover(
        self, ctx: CallContext, error: TurnoutError, plan: list[Candidate], current: int,
        admitted: set[int],
    ) -> None:
        if self.on_failover is None and not self.observers:
            return
        for index in range(current + 1, len(plan)):
            if index in admitted:
                if self.on_failover is not None:
                    self.on_failover(error, plan[index])
                if self.observers:
                    self.observers.failover(FailoverEvent(
                        ctx.request_id, plan[0].route.alias, plan[current].deployment.id,
                        plan[index].deployment.id, fallback_reason(error) or error.code))
                return

    def _emit(self, ctx: CallContext, candidate: Candidate, request: ChatRequest,
              attempt: Attempt) -> None:
        error = attempt.error
        outcome = "cancelled" if attempt.outcome == "cancelled" else attempt.outcome
        self.observers.attempt(AttemptEvent(
            ctx.request_id, candidate.route.alias, candidate.deployment.id,
            candidate.deployment.provider, attempt.kind,
            "ok" if outcome == "ok" else ("cancelled" if outcome == "cancelled" else "error"),
            attempt.latency_s, error.code if error else None,
            fallback_reason(error) if error else None, request.stream))

    @staticmethod
    def _exhausted(
        ctx: CallContext, unsupported: UnsupportedFeature | None, *, timed_out: bool = False
    ) -> TurnoutError:
        tried = [a for a in ctx.attempts if a.outcome != "skipped"]
        if not tried:
            if unsupported is not None:
                return unsupported
            if timed_out:
                return UpstreamTimeout("the request deadline passed before any attempt")
            return AllAttemptsFailed([], "no deployment of this route is available: "
                                         "every one is ejected or cannot hold the request")
        return AllAttemptsFailed(list(ctx.attempts))


@dataclass(frozen=True, slots=True)
class _Decision:
    action: Action
    delay: float = 0.0


def _deadline(now: float, policy: RoutePolicy, ctx: CallContext) -> float | None:
    limits = [x for x in (policy.timeouts.total_s, ctx.timeout_s) if x is not None]
    return now + min(limits) if limits else None


def _timeouts(policy: RoutePolicy, remaining: float | None) -> AttemptTimeouts:
    t = policy.timeouts
    base = AttemptTimeouts(connect_s=t.connect_s, ttft_s=t.ttft_s, idle_s=t.idle_s,
                           total_s=t.per_attempt_s)
    if remaining is None:
        return base
    return replace(base, connect_s=_cap(base.connect_s, remaining),
                   ttft_s=_cap(base.ttft_s, remaining), total_s=_cap(base.total_s, remaining))


def _cap(value: float | None, limit: float) -> float:
    return limit if value is None else min(value, limit)


def _has_next(plan: list[Candidate], index: int, admitted: set[int]) -> bool:
    return any(i in admitted for i in range(index + 1, len(plan)))


def _min_context(request: ChatRequest, plan: list[Candidate]) -> int:
    # Estimating costs a pass over the prompt: only when some target declares a window.
    if not any(c.deployment.info.context_window for c in plan):
        return 0
    return estimate_prompt_tokens(request)
