"""The attempt loop: breaker-aware ordering, retries with backoff, fallback, hedging and
deadlines.

Non-stream and stream calls share one loop; they differ only in the `AttemptFn` that runs
one attempt (a full call, or a stream opened and peeked up to its first content).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

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
from turnout.engine.hedge import race_with_hedge
from turnout.engine.observe import AttemptEvent, FailoverEvent, Observers
from turnout.engine.plan import Candidate
from turnout.engine.requirements import Requirements, overflow_refusal
from turnout.engine.state import ResilienceState
from turnout.engine.upstream import AttemptTimeouts
from turnout.resilience.backoff import Action, BackoffSettings, decide, retry_delay

T = TypeVar("T")
AttemptFn = Callable[[Candidate, AttemptTimeouts], Awaitable[T]]
Dispose = Callable[[T], None]
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
        self.observers = observers if observers is not None else Observers()

    async def run(
        self, plan: list[Candidate], request: ChatRequest, ctx: CallContext,
        attempt: AttemptFn[T], *, start: int = 0, dispose: Dispose[T] | None = None,
    ) -> Success[T]:
        """Try `plan[start:]` until one attempt succeeds. Raises the caller's error at once
        for errors no other target can fix, else `AllAttemptsFailed` with every attempt.
        `dispose` releases the value of a hedge attempt that finished but lost the race."""
        return await _Run(self, plan, request, ctx, attempt, dispose).execute(start)

    def emit_attempt(self, ctx: CallContext, candidate: Candidate, request: ChatRequest,
                     attempt: Attempt) -> None:
        error = attempt.error
        self.observers.attempt(AttemptEvent(
            ctx.request_id, candidate.route.alias, candidate.deployment.id,
            candidate.deployment.provider, attempt.kind,
            "ok" if attempt.outcome == "ok" else (
                "cancelled" if attempt.outcome == "cancelled" else "error"),
            attempt.latency_s, error.code if error else None,
            fallback_reason(error) if error else None, request.stream))


class _Run(Generic[T]):
    """The state of one request's way through its plan."""

    def __init__(self, executor: Executor, plan: list[Candidate], request: ChatRequest,
                 ctx: CallContext, attempt: AttemptFn[T], dispose: Dispose[T] | None) -> None:
        self.x = executor
        self.state = executor.state
        self.plan = plan
        self.request = request
        self.ctx = ctx
        self.attempt = attempt
        self.dispose = dispose
        self.policy = plan[0].route.policy if plan else RoutePolicy()
        self.deadline = _deadline(self.state.clock.monotonic(), self.policy, ctx)
        self.admitted = self.state.admit(plan)
        self.needs = Requirements(request, plan)
        self.unsupported: UnsupportedFeature | None = None
        self.unavailable = False
        """Some target that could take the request was refused for its health."""
        self.total = 0
        self.hedged: set[int] = set()

    async def execute(self, start: int) -> Success[T]:
        for index in range(start, len(self.plan)):
            if not self._eligible(index):
                continue
            result = await self._target(index)
            if result is not None:
                return result
        if not self.total and self.unsupported is None:
            # Nothing was tried because every breaker refused: say so, and when to retry.
            ejected = self.state.fail_fast(self.plan[start:])
            if ejected is not None:
                raise ejected
        raise self._exhausted()

    def _eligible(self, index: int) -> bool:
        # The request's needs first: a target that cannot take it must not reserve a probe.
        if index in self.hedged or self.needs.skip(self.plan[index].deployment):
            return False
        if self._admissible(index):
            return True
        self.unavailable = True
        return False

    def _admissible(self, index: int) -> bool:
        if index not in self.admitted:
            return False
        candidate = self.plan[index]
        if self.total:
            return self.state.allow_failover(candidate.deployment, candidate.route.policy.retry)
        return self.state.allow(candidate.deployment)

    async def _target(self, index: int) -> Success[T] | None:
        """Attempts on one target (retries included); None means: fail over.

        `_eligible` has just let a call through the target's breaker (a probe slot, when
        half open). Until an attempt starts and takes it over, that go-ahead is `held`
        here, and handed back whatever ends this function (a deadline, a budget, a
        cancellation), so a probe slot never stays taken by a call that never happened."""
        candidate = self.plan[index]
        tries = 0
        held = True
        try:
            while True:
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    raise self._exhausted(timed_out=True)
                if self.total >= self.policy.retry.max_attempts_total:
                    raise self._exhausted()
                kind: AttemptKind = "first" if self.total == 0 else (
                    "retry" if tries else "fallback")
                tries += 1
                timeouts = _timeouts(self.policy, remaining)
                held = False  # the attempt owns it from here
                try:
                    hedge = self._hedge_target(index, kind)
                    if hedge is None:
                        value = await self._one(candidate, kind, timeouts)
                        return Success(candidate, value, index)
                    return await self._hedged(index, hedge, kind, timeouts)
                except UnsupportedFeature as error:
                    # This target cannot express the request; another may. Not a health issue.
                    self.unsupported = self.unsupported or error
                    return None
                except TurnoutError as error:
                    action = self._after_failure(error, candidate, tries, remaining, index)
                    if action.action is Action.GIVE_UP:
                        raise self._exhausted() from None
                    if action.action is Action.RETRY_AFTER_WAIT:
                        await self.state.sleep(action.delay)
                        held = self.state.allow(candidate.deployment)
                        if held:
                            continue
                        # Its breaker opened meanwhile: on to the next target, if any.
                    self._notify_failover(error, index)
                    return None
        finally:
            if held:
                self.state.release(candidate.deployment)

    async def _one(self, candidate: Candidate, kind: AttemptKind,
                   timeouts: AttemptTimeouts) -> T:
        """One attempt with its bookkeeping: health, breaker, attempt log, events."""
        clock = self.state.clock
        started = clock.monotonic()
        self.total += 1
        self.state.on_start(candidate.deployment, retry=kind == "retry",
                            policy=candidate.route.policy.retry)
        try:
            value = await self.attempt(candidate, timeouts)
        except UnsupportedFeature:
            self.total -= 1
            self.state.on_cancel(candidate.deployment)
            raise
        except TurnoutError as error:
            latency = clock.monotonic() - started
            self.state.on_failure(candidate.deployment, error, latency)
            self._log(candidate, Attempt(candidate.deployment.id, "error", error, latency, kind))
            raise
        except BaseException as exc:
            # Cancelled (a hedge won, the client left) or a bug of ours (any exception type):
            # says nothing about the upstream's health, but the call is over either way, so
            # it must leave the in-flight count and hand back its probe slot.
            self.state.on_cancel(candidate.deployment)
            outcome: Literal["cancelled", "error"] = (
                "cancelled" if isinstance(exc, asyncio.CancelledError) else "error")
            self._log(candidate, Attempt(candidate.deployment.id, outcome, None,
                                         clock.monotonic() - started, kind))
            raise
        try:
            self._log(candidate, Attempt(candidate.deployment.id, "ok", None,
                                         clock.monotonic() - started, kind))
        except BaseException:
            if self.dispose is not None:  # an open stream: nobody else could close it now
                self.dispose(value)
            raise
        return value

    def _log(self, candidate: Candidate, attempt: Attempt) -> None:
        self.ctx.attempts.append(attempt)
        if self.x.observers:
            self.x.emit_attempt(self.ctx, candidate, self.request, attempt)

    # -- hedging -------------------------------------------------------------------------
    def _hedge_target(self, index: int, kind: AttemptKind) -> int | None:
        """The plan index to hedge the attempt on `index` with, if hedging applies now."""
        hedge = self.plan[index].route.policy.hedge
        if not hedge.enabled or kind == "retry":
            return None
        for other in range(index + 1, len(self.plan)):
            if other in self.admitted and other not in self.hedged and (
                    self.plan[other].route is self.plan[index].route) and (
                    self.needs.fits(self.plan[other].deployment)):
                return other
        return None

    async def _hedged(self, index: int, other: int, kind: AttemptKind,
                      timeouts: AttemptTimeouts) -> Success[T]:
        primary, backup = self.plan[index], self.plan[other]
        policy = primary.route.policy
        delay = policy.hedge.delay_s
        if delay is None and policy.hedge.use_p95:
            delay = self.state.ttft_p95(primary.deployment)
        if delay is None:
            value = await self._one(primary, kind, timeouts)
            return Success(primary, value, index)

        # Go-aheads of the breakers (probe slots) not yet taken over by a running attempt:
        # a task cancelled before its first step never runs `_one`, so they are handed back
        # here instead.
        unused = [primary.deployment]

        def admit_hedge() -> bool:
            if not self.state.try_hedge(primary.deployment, policy):
                return False
            if not self.state.allow(backup.deployment):
                return False
            self.hedged.add(other)
            unused.append(backup.deployment)
            return True

        async def run(candidate: Candidate, attempt_kind: AttemptKind) -> T:
            unused.remove(candidate.deployment)
            return await self._one(candidate, attempt_kind, timeouts)

        try:
            winner, value = await race_with_hedge(
                lambda: run(primary, kind), lambda: run(backup, "hedge"),
                delay, admit_hedge, self.state.sleep, self.dispose,
            )
        finally:
            for deployment in unused:
                self.state.release(deployment)
        return Success(primary, value, index) if winner == 0 else Success(backup, value, other)

    # -- decisions -----------------------------------------------------------------------
    def _after_failure(self, error: TurnoutError, candidate: Candidate, tries: int,
                       remaining: float | None, index: int) -> _Decision:
        if isinstance(error, ContextWindowExceeded) and error.origin == "upstream":
            # Not a failure of the target's health nor (yet) of the caller: this target is
            # too small for the request, as the pre-call check would have found had it known.
            # Whatever `fallback_on` says, go on to the targets that might hold it.
            self.needs.overflowed(candidate.deployment)
            if any(self._could_try(i) for i in range(index + 1, len(self.plan))):
                return _Decision(Action.FAIL_OVER)
            return _Decision(Action.GIVE_UP)
        reason = fallback_reason(error)
        policy = candidate.route.policy
        if error.origin != "upstream" or reason is None or reason not in policy.fallback_on:
            raise error  # nobody else can fix it: the caller gets it as it is
        has_next = any(self._could_try(i) for i in range(index + 1, len(self.plan)))
        retry = policy.retry
        if has_next and retry.order == "failover_first":
            # Another target can take the request now: that is always sooner than a backoff
            # or a Retry-After wait here, and spares a struggling deployment. Same-target
            # retries are for the last target standing.
            return _Decision(Action.FAIL_OVER)
        if isinstance(error, ContextWindowExceeded) or not error.retryable:
            # e.g. a provider-key 401: a retry won't help
            return _Decision(Action.FAIL_OVER if has_next else Action.GIVE_UP)
        if not self.state.available(candidate.deployment):
            # Its breaker just opened: no retry, and no wait for one.
            return _Decision(Action.FAIL_OVER if has_next else Action.GIVE_UP)
        settings = BackoffSettings(base_s=retry.base_delay_s, cap_s=retry.max_delay_s,
                                   max_retry_after_s=retry.max_retry_after_s)
        delay = retry_delay(tries - 1, error.retry_after, settings, self.state.rng)
        # Under `retry_first` with another target left, `decide` fails over whenever the
        # retry is not allowed: attempts, budget, deadline or a wait over max_retry_after_s.
        decision = decide(
            retryable=True, attempts_made=tries,
            # No wait (nor budget) for a retry that max_attempts_total would forbid.
            max_attempts=min(retry.max_attempts_per_target,
                             tries + self.policy.retry.max_attempts_total - self.total),
            delay=delay,
            remaining_deadline=remaining, has_next_target=has_next,
            budget_allows=lambda: self.state.try_retry(candidate.deployment, retry),
            max_retry_after_s=retry.max_retry_after_s,
        )
        return _Decision(decision.action, decision.delay)

    def _could_try(self, index: int) -> bool:
        return index in self.admitted and index not in self.hedged and self.needs.fits(
            self.plan[index].deployment)

    def _notify_failover(self, error: TurnoutError, current: int) -> None:
        x = self.x
        if x.on_failover is None and not x.observers:
            return
        for index in range(current + 1, len(self.plan)):
            if self._could_try(index):
                target = self.plan[index]
                if x.on_failover is not None:
                    x.on_failover(error, target)
                if x.observers:
                    x.observers.failover(FailoverEvent(
                        self.ctx.request_id, self.plan[0].route.alias,
                        self.plan[current].deployment.id, target.deployment.id,
                        fallback_reason(error) or error.code))
                return

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - self.state.clock.monotonic()

    def _exhausted(self, *, timed_out: bool = False) -> TurnoutError:
        # Targets skipped only for the request's own needs (size, capabilities) make it the
        # caller's error. If a target that could take it was ejected instead, it is not:
        # the same request may succeed once that target is back.
        if not self.ctx.attempts:
            if self.unsupported is not None:
                return self.unsupported
            if timed_out:
                return UpstreamTimeout("the request deadline passed before any attempt")
            refusal = None if self.unavailable or not self.plan else self.needs.refusal(
                self.plan[0].route.alias)
            return refusal or AllAttemptsFailed([], (
                "no deployment of this route is available: every one that can take the "
                "request is ejected or cooling down" + self.needs.describe_skips()))
        if not self.unavailable and (overflow := overflow_refusal(self.ctx.attempts)):
            return overflow
        return AllAttemptsFailed(list(self.ctx.attempts))


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
