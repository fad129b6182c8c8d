"""Resilience state shared by every request: breakers, cooldowns, budgets, health.

The executor reports each attempt's real outcome here directly (control flow never rides
on logging); routing reads it back as admission and ordering decisions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from turnout.config.policies import BreakerPolicy, RetryPolicy, RoutePolicy
from turnout.core.errors import RateLimited, ServiceUnavailable, TurnoutError
from turnout.engine.classify import counts_against_deployment
from turnout.engine.plan import Candidate
from turnout.providers.types import Deployment, Route
from turnout.resilience.balancer import CandidateSnapshot, order_candidates
from turnout.resilience.breaker import BreakerSettings, BreakerState
from turnout.resilience.clock import Clock, RandomSource
from turnout.resilience.ejection import BreakerBoard
from turnout.resilience.health import DeploymentHealth
from turnout.resilience.retry_budget import BudgetSettings, HedgeBudget, RetryBudget
from turnout.state.health import HealthEvent, HealthSink

_DEFAULT_COOLDOWN_S = 1.0
"""Cooldown after a 429 that did not say how long to wait."""
_MIN_RETRY_AFTER_S = 1.0
"""The shortest `Retry-After` a fast failure asks for (the header counts whole seconds)."""


def breaker_settings(policy: BreakerPolicy) -> BreakerSettings:
    """The breaker's own settings for a policy. A switched-off rule and a fixed cooldown
    are compiled away here, so the breaker itself has no extra branch for them."""
    fixed = policy.ejection_growth == "fixed"
    return BreakerSettings(
        consecutive_failures=policy.consecutive_failures or 0,
        failure_rate_threshold=policy.failure_rate_threshold, min_calls=policy.min_calls,
        window_s=policy.window_s, base_ejection_s=policy.base_ejection_s,
        max_ejection_s=policy.base_ejection_s if fixed else policy.max_ejection_s,
        half_open_max_probes=policy.half_open_max_probes,
    )


class ResilienceState:
    """Per-deployment breakers, 429 cooldowns, retry budgets and health, keyed by
    deployment id so they survive config reloads.

    With `peers` set (several replicas sharing health, see `turnout.state.health`), each
    breaker that opens or closes and each 429 cooldown is also reported there, and
    `apply_peer` mirrors the other replicas' changes into this state; routing still reads
    only this state."""

    def __init__(self, clock: Clock, rng: RandomSource,
                 sleep: Callable[[float], Awaitable[Any] | Any],
                 breaker_policy: BreakerPolicy | None = None) -> None:
        self.clock = clock
        self.rng = rng
        self._sleep = sleep
        self.breakers = BreakerBoard(breaker_settings(breaker_policy or BreakerPolicy()), clock)
        self.cooldown_until: dict[str, float] = {}
        self._breaker_settings: dict[BreakerPolicy, BreakerSettings] = {}
        self.health: dict[str, DeploymentHealth] = {}
        self._retry_budgets: dict[str, RetryBudget] = {}
        self._hedge_budgets: dict[str, HedgeBudget] = {}
        self.peers: HealthSink | None = None
        """Told of every local breaker transition and cooldown; None: nobody to tell."""

    async def sleep(self, seconds: float) -> None:
        result = self._sleep(seconds)
        if isinstance(result, Awaitable):
            await result

    # -- routing -------------------------------------------------------------------------
    def order(self, route: Route) -> list[Deployment]:
        """The route's deployments: priority tiers in order, each tier ordered by the
        route's balancing strategy."""
        deployments = route.deployments
        if len(deployments) == 1:
            return [deployments[0]]
        strategy = route.policy.balance.strategy
        ordered: list[Deployment] = []
        by_id = {d.id: d for d in deployments}
        for priority in sorted({d.priority for d in deployments}):
            tier = [self._snapshot(d) for d in deployments if d.priority == priority]
            ordered.extend(by_id[c.id] for c in order_candidates(strategy, tier, self.rng))
        return ordered

    def admit(self, plan: list[Candidate]) -> set[int]:
        """Indexes of plan entries that may be tried now: breaker closed (or the ejection
        cap admits it as a probe) and not cooling down after a 429.

        The cap protects the pool a request can fail over within, which is its whole plan
        (fallback routes included, each deployment counted once), under the requested
        route's `max_ejected_share`. A plan of one deployment is not capped: with nowhere
        to fail over to, an open breaker means failing fast (see `fail_fast`)."""
        if not plan:
            return set()
        board = self.breakers
        ids = [c.deployment.id for c in plan]
        if not all(i in board for i in ids):
            for candidate in plan:  # a deployment's first route gives its breaker settings
                self._ensure_breakers([candidate.deployment.id], candidate.route.policy.breaker)
        # Ids are unique within a route: only a plan with fallback routes can repeat one.
        pool = ids if plan[-1].route is plan[0].route else list(dict.fromkeys(ids))
        share = plan[0].route.policy.breaker.max_ejected_share if len(pool) > 1 else 1.0
        admissible = board.admissible(pool, share)
        if not self.cooldown_until and len(admissible) == len(pool):
            return set(range(len(ids)))  # the usual case: every breaker lets calls through
        ok = set(admissible)
        if not self.cooldown_until:
            return {i for i, deployment_id in enumerate(ids) if deployment_id in ok}
        now = self.clock.monotonic()
        admitted: set[int] = set()
        cooling: list[int] = []
        for i, deployment_id in enumerate(ids):
            until = self.cooldown_until.get(deployment_id)
            if until is not None:
                if until > now:
                    cooling.append(i)
                    continue
                # Over: forget it, so that requests take the fast path above again.
                del self.cooldown_until[deployment_id]
            if deployment_id in ok:
                admitted.add(i)
        if not admitted and cooling:
            # Everything is cooling down: the soonest to recover is still worth a try.
            soonest = min(cooling, key=lambda i: self.cooldown_until[ids[i]])
            if ids[soonest] in ok:
                admitted.add(soonest)
        return admitted

    def allow(self, deployment: Deployment) -> bool:
        """Right before an attempt: may it go? (Reserves a probe slot when half-open.)"""
        return self.breakers.breaker(deployment.id).allow()

    def allow_failover(self, deployment: Deployment, policy: RetryPolicy) -> bool:
        """Before a request's second or later attempt: a healthy (closed) target takes it
        freely; one only being probed (half-open, or admitted by the ejection cap) takes it
        only within the retry budget, so a total outage does not multiply load."""
        breaker = self.breakers.breaker(deployment.id)
        if not breaker.allow():
            return False
        if breaker.state is BreakerState.CLOSED or self.try_retry(deployment, policy):
            return True
        breaker.release_probe()
        return False

    def available(self, deployment: Deployment) -> bool:
        """Whether the breaker would let a call through now (reserves nothing)."""
        return self.breakers.breaker(deployment.id).is_available()

    def release(self, deployment: Deployment) -> None:
        """Hand back a go-ahead from `allow` (or `allow_failover`) that no attempt used."""
        self.breakers.breaker(deployment.id).release_probe()

    def fail_fast(self, plan: Sequence[Candidate]) -> ServiceUnavailable | None:
        """When no deployment of `plan` may take a call now (every one ejected, or being
        probed with no probe slot free): the error to answer at once, without an upstream
        call, with `retry_after` until the soonest ejection ends (at least a second, the
        resolution of `Retry-After`, also when only probes are under way). Else None."""
        if not plan:
            return None
        soonest: float | None = None
        for candidate in plan:
            breaker = self.breakers.breaker(candidate.deployment.id)
            if breaker.is_available():
                return None
            until = breaker.open_until
            if until is not None and (soonest is None or until < soonest):
                soonest = until
        now = self.clock.monotonic()
        wait = _MIN_RETRY_AFTER_S if soonest is None else max(_MIN_RETRY_AFTER_S, soonest - now)
        return ServiceUnavailable(
            f"No deployment of '{plan[0].route.alias}' is taking requests: each one failed "
            "repeatedly and its circuit breaker is open until its next probe.",
            retry_after=wait)

    # -- outcomes ------------------------------------------------------------------------
    def on_start(self, deployment: Deployment, *, retry: bool,
                 policy: RetryPolicy | None = None) -> None:
        """An attempt begins (`retry`: on the target that just failed). `policy` is the
        retry policy of its route: the first one to reach a deployment sizes its budget."""
        self._health(deployment).start()
        if not retry:
            self._retry_budget(deployment, policy).record_request()

    def on_success(self, deployment: Deployment, headers: Mapping[str, str],
                   latency_s: float) -> None:
        health = self._health(deployment)
        health.finish()
        health.observe_latency(latency_s)
        health.update_rate_limits(headers)
        if self.breakers.breaker(deployment.id).record_success() and self.peers is not None:
            self.peers.breaker_closed(deployment.id)

    def on_first_token(self, deployment: Deployment, ttft_s: float,
                       headers: Mapping[str, str]) -> None:
        health = self._health(deployment)
        health.observe_ttft(ttft_s)
        health.update_rate_limits(headers)

    def on_stream_end(self, deployment: Deployment, error: TurnoutError | None,
                      latency_s: float) -> None:
        health = self._health(deployment)
        health.finish()
        breaker = self.breakers.breaker(deployment.id)
        if error is None:
            health.observe_latency(latency_s)
            if breaker.record_success() and self.peers is not None:
                self.peers.breaker_closed(deployment.id)
        elif counts_against_deployment(error):
            if breaker.record_failure():
                self._opened(deployment.id)
        else:
            breaker.release_probe()

    def on_failure(self, deployment: Deployment, error: TurnoutError, latency_s: float) -> None:
        self._health(deployment).finish()
        breaker = self.breakers.breaker(deployment.id)
        if isinstance(error, RateLimited) and error.origin == "upstream":
            wait = error.retry_after if error.retry_after is not None else _DEFAULT_COOLDOWN_S
            until = self.cooldown_until[deployment.id] = self.clock.monotonic() + wait
            breaker.release_probe()
            if self.peers is not None:
                self.peers.cooled_down(deployment.id, until)
        elif counts_against_deployment(error):
            if breaker.record_failure():
                self._opened(deployment.id)
        else:
            breaker.release_probe()

    def on_cancel(self, deployment: Deployment) -> None:
        self._health(deployment).finish()
        self.breakers.breaker(deployment.id).release_probe()

    def try_retry(self, deployment: Deployment, policy: RetryPolicy) -> bool:
        return self._retry_budget(deployment, policy).try_acquire_retry()

    def try_hedge(self, deployment: Deployment, policy: RoutePolicy) -> bool:
        budget = self._hedge_budgets.get(deployment.id)
        if budget is None:
            settings = BudgetSettings(ratio=policy.hedge.max_share, min_per_window=0,
                                      window_s=policy.retry.window_s)
            budget = self._hedge_budgets[deployment.id] = HedgeBudget(settings, self.clock)
        budget.record_request()
        return budget.try_acquire_hedge()

    def ttft_p95(self, deployment: Deployment) -> float | None:
        """The observed p95 time to first token (None until enough samples)."""
        health = self.health.get(deployment.id)
        return None if health is None else health.ttft_quantile(0.95)

    # -- other replicas ------------------------------------------------------------------
    def apply_peer(self, event: HealthEvent, policy: BreakerPolicy) -> bool:
        """Mirror another replica's change of `event.deployment` into this state; `policy`
        is the breaker policy this replica's config gives the deployment (used when its
        breaker does not exist yet, and to cap a peer's ejection at our own longest).
        True when it changed anything. Nothing is reported back to `peers`.

        An ejection or cooldown only ever lengthens what this replica already has; a
        peer's successful probe closes the breaker (evidence of health, wherever seen)."""
        deployment_id = event.deployment
        self._ensure_breakers([deployment_id], policy)
        breaker = self.breakers.breaker(deployment_id)
        now = self.clock.monotonic()
        if event.kind == "open":
            seconds = min(event.seconds, breaker.settings.max_ejection_s)
            return breaker.eject_until(now + seconds, event.times_ejected)
        if event.kind == "closed":
            return breaker.close_for_peer()
        until = now + event.seconds
        if until <= self.cooldown_until.get(deployment_id, now):
            return False
        self.cooldown_until[deployment_id] = until
        return True

    def _opened(self, deployment_id: str) -> None:
        """A local breaker just opened: tell the peers for how long."""
        if self.peers is not None:
            breaker = self.breakers.breaker(deployment_id)
            until = breaker.open_until
            if until is not None:
                self.peers.breaker_opened(deployment_id, until, breaker.times_ejected)

    # -- internals -----------------------------------------------------------------------
    def _ensure_breakers(self, ids: list[str], policy: BreakerPolicy) -> None:
        """Create missing breakers with the settings of the first route that uses them."""
        board = self.breakers
        if all(i in board for i in ids):
            return
        settings = self._breaker_settings.get(policy)
        if settings is None:
            settings = self._breaker_settings[policy] = breaker_settings(policy)
        for deployment_id in ids:
            board.breaker(deployment_id, settings)

    def _health(self, deployment: Deployment) -> DeploymentHealth:
        health = self.health.get(deployment.id)
        if health is None:
            health = self.health[deployment.id] = DeploymentHealth(deployment.id, self.clock)
        return health

    def _retry_budget(self, deployment: Deployment,
                      policy: RetryPolicy | None = None) -> RetryBudget:
        budget = self._retry_budgets.get(deployment.id)
        if budget is None:
            policy = policy or RetryPolicy()
            settings = BudgetSettings(ratio=policy.budget_ratio,
                                      min_per_window=policy.min_retries_per_window,
                                      window_s=policy.window_s)
            budget = self._retry_budgets[deployment.id] = RetryBudget(settings, self.clock)
        return budget

    def _snapshot(self, deployment: Deployment) -> CandidateSnapshot:
        return self._health(deployment).candidate(deployment.id, deployment.weight)
