"""Admit and reserve: a tenant's rate limits, concurrency limits and budgets.

Once the plan is known (`on_plan`: the candidates' prices and token counters are needed),
the stage works out the call's worst case and asks the stores, in one go
(`SharedStores.admit`: one Lua script, one round trip, on Redis), for:

- its rate limits: requests and tokens per minute of the key and of its tenant;
- a concurrency slot of the key and of the tenant;
- a reservation of the worst-case cost (USD budgets) and tokens (token budgets) against
  every budget of the key and the tenant, for the current day, month and lifetime in the
  configured time zone. Retries, fallbacks and hedges draw on this one reservation.

All or nothing: a call refused by any of them takes none of the others. At the end of the
call (`on_end`, however it ended) the slots are given back and the reservation is settled
at what the call really cost (`turnout.stages.metering`), in one more script on Redis,
sent off the request path (the answer does not wait for it); soft budgets are charged the
same way with no limit, and crossing an alert threshold emits an alert.

A refused call is a 429: `insufficient_quota` naming the budget and when it resets, or a
rate limit with `Retry-After` and the `x-ratelimit-*` headers OpenAI clients read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from turnout.config.runtime import TenancySettings
from turnout.core.errors import BudgetExhausted, RateLimited
from turnout.engine.context import Identity
from turnout.engine.pipeline import Call, CallEnd, Stage
from turnout.pricing.estimate import reservation_micro_usd
from turnout.stages.metering import metered, prompt_tokens
from turnout.stages.shared_stores import Granted, SharedStores
from turnout.state.admission import Slot
from turnout.state.budgets import MAX_UNITS, BudgetDenied, Charge
from turnout.state.limits import Admission, Denied, Limit, LimitState
from turnout.tenancy.policy import Budget, Policy
from turnout.tokens.count import counter_for

_log = logging.getLogger("turnout.budgets")

DEFAULT_MAX_OUTPUT = 4096
"""Output tokens reserved for a call that sets no `max_tokens` on a model whose maximum
output the catalog does not know. A call that outputs more is still charged in full."""
MIN_LEASE_S = 900.0
"""A reservation and a concurrency slot are held at least this long before a sweep frees
them (a replica that crashed mid-call): longer than any call runs."""

Scope = Literal["tenant", "key"]


@dataclass(frozen=True, slots=True)
class _Budgeted:
    """One budget charged for this call."""

    scope: Scope
    owner: str
    budget: Budget
    key: str
    resets_at: datetime | None
    usd: bool
    """Counted in micro-dollars (else in tokens)."""
    hard: bool
    limit: int
    """The limit in the ledger's units (no limit, `MAX_UNITS`, for a soft budget)."""
    ttl_s: float
    """How long the ledger keeps the budget's counters."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one key's policies ask of every call, in the current budget periods."""

    tenant_id: str
    key_policy: Policy
    tenant_policy: Policy
    ends_at: datetime | None
    """When the first of its budget periods ends (the plan is then worked out again)."""
    nothing: bool
    """No limit, slot or budget at all: the stage has nothing to do."""
    priced: bool
    """A hard budget in dollars: the call's worst-case price is needed."""
    counts_tokens: bool
    """A hard budget or a tokens-per-minute limit: the call's worst case is needed."""
    limits: list[Limit]
    """Tokens-per-minute limits have cost 0 here: the call's tokens are set per call."""
    slots: list[Slot]
    budgets: list[_Budgeted]

    def fits(self, identity: Identity, now: datetime) -> bool:
        return (self.key_policy is identity.key_policy
                and self.tenant_policy is identity.tenant_policy
                and self.tenant_id == identity.tenant_id
                and (self.ends_at is None or now < self.ends_at))


_PLANS_KEPT = 10_000
"""Keys whose plans are kept; beyond, the cache starts again (a plan is cheap to redo)."""


@dataclass(frozen=True, slots=True)
class _Taken:
    """What the stage holds for one call, to give back or settle at its end."""

    granted: Granted
    budgets: list[_Budgeted]


class Quota(Stage):
    """Rate limits, concurrency limits and budgets of tenants and their keys."""

    name = "quota"

    def __init__(self, settings: TenancySettings, stores: SharedStores,
                 wall: Callable[[], datetime] | None = None) -> None:
        self._stores = stores
        self._zone = _zone(settings.budget_timezone)
        self._wall = wall or (lambda: datetime.now(UTC))
        self._periods: dict[str, tuple[str, datetime | None]] = {}
        """The current period of each kind, reused until it ends."""
        self._plans: dict[str, _Plan] = {}
        """Per key id: what its policies ask for (see `_plan`)."""

    async def on_plan(self, call: Call) -> None:
        identity = call.ctx.identity
        if identity is None:
            return
        now = self._wall()
        plan = self._plans.get(identity.key_id)
        if plan is None or not plan.fits(identity, now):
            plan = self._plan(identity, now)
        if plan.nothing:
            return
        tokens, micro_usd = (_worst_case(call, plan.priced) if plan.counts_tokens
                             else (0, 0))
        limits = [limit if limit.cost == 1 or not tokens else
                  Limit(limit.key, limit.rate, limit.period_s, limit.burst, tokens)
                  for limit in plan.limits]
        slots, lease_s, budgets = plan.slots, _lease_s(call), plan.budgets
        charges = [Charge(b.key, b.limit, (micro_usd if b.usd else tokens) if b.hard else 0,
                          b.ttl_s) for b in budgets]
        granted = await self._stores.admit(limits, slots, charges, lease_s)
        admission = granted.admission
        if admission is not None:
            call.ctx.response_headers = _limit_headers(admission.states)
        if granted.allowed:
            call.state[self] = _Taken(granted, budgets)
            return
        if admission is not None and not admission.allowed:
            raise _rate_limited(admission)
        if granted.slot_denied is not None:
            raise _too_many(granted.slot_denied, identity)
        assert granted.budget_denied is not None
        raise self._exhausted(granted.budget_denied, budgets)

    async def on_end(self, call: Call, end: CallEnd) -> None:
        taken = call.state.pop(self, None)
        if not isinstance(taken, _Taken):
            return
        granted = taken.granted
        actual: dict[str, int] | None = None
        if granted.held is not None:
            spend = metered(call, end)
            actual = {b.key: spend.micro_usd if b.budget.unit == "usd" else spend.tokens
                      for b in taken.budgets}
        if granted.local:
            spent = await self._stores.release(granted, actual)
            self._alerts(taken.budgets, actual, spent)
        else:  # the answer need not wait for Redis: settle off the request path
            self._stores.spawn(self._release(taken, actual))

    async def _release(self, taken: _Taken, actual: dict[str, int] | None) -> None:
        spent = await self._stores.release(taken.granted, actual)
        self._alerts(taken.budgets, actual, spent)

    # -- what a key's policies ask for, worked out once ------------------------------------
    def _plan(self, identity: Identity, now: datetime) -> _Plan:
        """The limits, slots and budgets of `identity`'s policies in the current periods,
        kept until a policy changes (a new object from the key directory) or the first of
        its periods ends."""
        owners: tuple[tuple[Scope, str, Policy], ...] = (
            ("key", identity.key_id, identity.key_policy),
            ("tenant", identity.tenant_id, identity.tenant_policy))
        budgets: list[_Budgeted] = []
        limits: list[Limit] = []
        slots: list[Slot] = []
        for scope, owner, policy in owners:
            rpm, tpm, concurrency = (policy.limits.rpm, policy.limits.tpm,
                                     policy.limits.concurrency)
            if rpm:
                limits.append(Limit(f"rl:{scope}:{owner}:rpm", rpm, 60.0, rpm, 1))
            if tpm:  # its cost, the call's tokens, is set per call
                limits.append(Limit(f"rl:{scope}:{owner}:tpm", tpm, 60.0, tpm, 0))
            if concurrency:
                slots.append(Slot(f"cc:{scope}:{owner}", concurrency))
            for budget in policy.budgets:
                stamp, resets = self._period(budget.period, now)
                key = f"budget:{scope}:{owner}:{budget.period}:{budget.unit}:{stamp}"
                budgets.append(_Budgeted(
                    scope, owner, budget, key, resets, budget.unit == "usd", budget.hard,
                    budget.limit_units if budget.hard else MAX_UNITS, _ttl_s(resets, now)))
        ends = [b.resets_at for b in budgets if b.resets_at is not None]
        hard = [b for b in budgets if b.hard]
        plan = _Plan(identity.tenant_id, identity.key_policy, identity.tenant_policy,
                     min(ends) if ends else None, not (limits or slots or budgets),
                     any(b.usd for b in hard),
                     bool(hard) or any(limit.cost == 0 for limit in limits),
                     limits, slots, budgets)
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()
        self._plans[identity.key_id] = plan
        return plan

    def _period(self, period: str, now: datetime) -> tuple[str, datetime | None]:
        current = self._periods.get(period)
        if current is None or (current[1] is not None and now >= current[1]):
            current = self._periods[period] = _period(period, now.astimezone(self._zone))
        return current

    def _exhausted(self, denied: BudgetDenied, budgets: list[_Budgeted]) -> BudgetExhausted:
        budget = next(b for b in budgets if b.key == denied.charge.key)
        limit = (usd(budget.budget.usd) if budget.budget.usd is not None
                 else f"{budget.budget.tokens:,} tokens")
        what = {"day": "daily", "month": "monthly", "total": "lifetime"}[budget.budget.period]
        owner = f"tenant '{budget.owner}'" if budget.scope == "tenant" else (
            f"key '{budget.owner}'")
        if budget.resets_at is None:
            when = "It does not reset."
            retry = None
        else:
            when = f"It resets at {budget.resets_at.isoformat()}."
            retry = max((budget.resets_at - self._wall()).total_seconds(), 1.0)
        return BudgetExhausted(
            f"The {what} budget of {limit} for {owner} has no room for this request "
            f"(the most it could cost). {when}", retry_after=retry)

    def _alerts(self, budgets: list[_Budgeted], actual: dict[str, int] | None,
                spent: dict[str, int]) -> None:
        """Emit an alert for each threshold this call's spend crossed."""
        if actual is None:
            return
        for budgeted in budgets:
            alerts, now = budgeted.budget.alerts, spent.get(budgeted.key)
            if not alerts or now is None or not actual[budgeted.key]:
                continue
            limit = budgeted.budget.limit_units
            before = now - actual[budgeted.key]
            for threshold in alerts:
                line = math.ceil(limit * threshold)
                if before < line <= now:
                    self._stores.alerts.crossed(budgeted.scope, budgeted.owner,
                                                budgeted.budget, threshold, now)


def usd(amount: float) -> str:
    """Dollars as people write them: `$25.00`, and small budgets without rounding to 0."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.6g}"


def _worst_case(call: Call, priced: bool) -> tuple[int, int]:
    """The most tokens and micro-dollars (when `priced`) the call can consume on any of
    its candidates (prompt estimate plus its maximum output; doubled when a route may
    hedge)."""
    request = call.request
    tokens = micro_usd = 0
    hedged = False
    for candidate in call.plan:
        deployment = candidate.deployment
        counter = counter_for(deployment.dialect, deployment.target.model)
        prompt = prompt_tokens(call, counter)
        cap = deployment.info.max_output_tokens
        wanted = request.max_tokens
        output = (min(wanted, cap) if wanted is not None and cap is not None
                  else wanted or cap or DEFAULT_MAX_OUTPUT)
        tokens = max(tokens, prompt + output)
        price = deployment.info.price
        if priced and price is not None:
            micro_usd = max(micro_usd, reservation_micro_usd(prompt, output, price))
        hedged = hedged or candidate.route.policy.hedge.enabled
    factor = 2 if hedged else 1
    return min(tokens * factor, MAX_UNITS), min(micro_usd * factor, MAX_UNITS)


def _lease_s(call: Call) -> float:
    totals = [c.route.policy.timeouts.total_s for c in call.plan[:1]]
    return max(MIN_LEASE_S, 2 * (totals[0] or 0) if totals else 0)


def _rate_limited(admission: Admission) -> RateLimited:
    state = admission.denied_by
    assert state is not None
    scope, owner, kind = state.limit.key.split(":")[1:4]
    what = "requests" if kind == "rpm" else "tokens"
    who = f"tenant '{owner}'" if scope == "tenant" else f"key '{owner}'"
    if math.isinf(state.retry_after):
        return RateLimited(
            f"This request needs {state.limit.cost:,} tokens, more than the {what} per "
            f"minute limit of {state.limit.rate:,} for {who} allows at once. Lower "
            "max_tokens or the prompt.")
    return RateLimited(f"Rate limit of {state.limit.rate:,} {what} per minute reached for "
                       f"{who}. Retry after {state.retry_after:.2f} s.",
                       retry_after=state.retry_after)


def _too_many(denied: Denied, identity: Identity) -> RateLimited:
    scope, owner = denied.key.split(":")[1:3]
    who = f"tenant '{owner}'" if scope == "tenant" else f"key '{owner}'"
    return RateLimited(f"Concurrency limit of {denied.limit} requests in flight reached for "
                       f"{who}.", retry_after=max(min(denied.retry_after, 60.0), 1.0))


def _limit_headers(states: Sequence[LimitState]) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers: for requests and for tokens, the tighter of the
    key's and the tenant's limits (the one with the fewest units left)."""
    tightest_of: dict[str, LimitState] = {}
    for state in states:
        kind = "tokens" if state.limit.key.endswith(":tpm") else "requests"
        known = tightest_of.get(kind)
        if known is None or state.remaining < known.remaining:
            tightest_of[kind] = state
    headers: dict[str, str] = {}
    for kind, state in tightest_of.items():
        headers[f"x-ratelimit-limit-{kind}"] = str(state.limit.rate)
        headers[f"x-ratelimit-remaining-{kind}"] = str(state.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = _duration(state.reset_after)
    return headers


def _duration(seconds: float) -> str:
    """A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 10) / 10:g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


def _period(period: str, local: datetime) -> tuple[str, datetime | None]:
    """The budget's period containing `local` (a time in the budget's zone): its stamp
    and when it ends."""
    zone = local.tzinfo
    if period == "day":
        start = datetime(local.year, local.month, local.day, tzinfo=zone)
        nxt = (start + timedelta(days=1)).replace(tzinfo=None)
        return start.date().isoformat(), datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    if period == "month":
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return f"{local.year:04d}-{local.month:02d}", datetime(year, month, 1, tzinfo=zone)
    return "all", None


def _ttl_s(resets_at: datetime | None, now: datetime) -> float:
    """Keep a budget's counters a day past its period's end; a lifetime one ~10 years."""
    if resets_at is None:
        return 10 * 365 * 86_400.0
    return max((resets_at - now).total_seconds(), 0.0) + 86_400.0


def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
