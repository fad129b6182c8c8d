"""Admit and reserve: a tenant's rate limits, concurrency limits and budgets.

Once the plan is known (`on_plan`: the candidates' prices and token counters are needed),
the stage works out the call's worst case, then asks the stores, concurrently, for:

- its rate limits: requests and tokens per minute of the key and of its tenant, all or
  nothing (a request over one limit consumes none of the others);
- a concurrency slot of the key and of the tenant;
- a reservation of the worst-case cost (USD budgets) and tokens (token budgets) against
  every budget of the key and the tenant, for the current day, month and lifetime in the
  configured time zone. Retries, fallbacks and hedges draw on this one reservation.

The requests go out together, so a call with all three pays one round trip of latency on
Redis, not three. Whatever was granted is undone if anything was refused. At the end of
the call (`on_end`, however it ended) the slots are given back and the reservation is
settled at what the call really cost (`turnout.stages.metering`); soft budgets are
charged the same way with no limit, and crossing an alert threshold emits an alert.

A refused call is a 429: `insufficient_quota` naming the budget and when it resets, or a
rate limit with `Retry-After` and the `x-ratelimit-*` headers OpenAI clients read.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from turnout.config.runtime import TenancySettings
from turnout.core.errors import BudgetExhausted, RateLimited, TurnoutError
from turnout.engine.context import Identity
from turnout.engine.pipeline import Call, CallEnd, Stage
from turnout.pricing.estimate import reservation_micro_usd
from turnout.stages.metering import metered, prompt_tokens
from turnout.stages.shared_stores import Held, SharedStores
from turnout.state.budgets import MAX_UNITS, BudgetDenied, Charge
from turnout.state.limits import Admission, Denied, Lease, Limit, LimitState
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


@dataclass(slots=True)
class _Taken:
    """What the stage holds for one call, to give back or settle at its end."""

    leases: list[tuple[Lease, bool]] = field(default_factory=list)
    held: Held | None = None
    budgets: list[_Budgeted] = field(default_factory=list)


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

    async def on_plan(self, call: Call) -> None:
        identity = call.ctx.identity
        if identity is None:
            return
        tenant, key = identity.tenant_policy, identity.key_policy
        if tenant.empty and key.empty:
            return
        owners: tuple[tuple[Scope, str, Policy], ...] = (
            ("key", identity.key_id, key), ("tenant", identity.tenant_id, tenant))
        budgets = self._budgets(owners)
        hard = [b.budget.unit for b in budgets if b.budget.hard]
        counts_tokens = "tokens" in hard or any(p.limits.tpm for _, _, p in owners)
        tokens, micro_usd = (_worst_case(call, "usd" in hard)
                             if counts_tokens or hard else (0, 0))
        limits = _rate_limits(owners, tokens)
        slots = [(f"cc:{scope}:{owner}", policy.limits.concurrency)
                 for scope, owner, policy in owners if policy.limits.concurrency]
        lease_s = _lease_s(call)
        charges = [Charge(b.key, b.budget.limit_units if b.budget.hard else MAX_UNITS,
                          (micro_usd if b.budget.unit == "usd" else tokens)
                          if b.budget.hard else 0, _ttl_s(b.resets_at, self._wall()))
                   for b in budgets]
        stores = self._stores
        work: list[Awaitable[object]] = [stores.acquire(limits)] if limits else []
        work += [stores.enter(k, n, lease_s) for k, n in slots if n]
        if charges:
            work.append(stores.reserve(charges, lease_s))
        results: list[object]
        if stores.shared and len(work) > 1:
            # Network stores: send together, wait one round trip.
            results = list(await asyncio.gather(*work, return_exceptions=True))
        else:  # in-process stores never wait: tasks would cost more than the calls
            results = []
            for job in work:
                try:
                    results.append(await job)
                except Exception as exc:
                    results.append(exc)
        taken = _Taken(budgets=budgets)
        call.state[self] = taken
        admission: Admission | None = None
        refusal: TurnoutError | BaseException | None = None
        for result in results:
            if isinstance(result, Admission):
                admission = result
                if not result.allowed:
                    refusal = refusal or _rate_limited(result)
            elif isinstance(result, tuple):
                slot, local = result
                if isinstance(slot, Lease):
                    taken.leases.append((slot, local))
                else:
                    refusal = refusal or _too_many(slot, identity)
            elif isinstance(result, Held):
                taken.held = result
            elif isinstance(result, BudgetDenied):
                refusal = refusal or self._exhausted(result, budgets)
            elif isinstance(result, BaseException):
                refusal = refusal or result
        if admission is not None:
            call.ctx.response_headers = _limit_headers(admission.states)
        if refusal is not None:
            await self._undo(taken)
            call.state.pop(self, None)
            raise refusal

    async def on_end(self, call: Call, end: CallEnd) -> None:
        taken = call.state.pop(self, None)
        if not isinstance(taken, _Taken):
            return
        stores = self._stores
        for lease, local in taken.leases:
            await stores.leave(lease, local)
        if taken.held is None:
            return
        spend = metered(call, end)
        actual = {b.key: spend.micro_usd if b.budget.unit == "usd" else spend.tokens
                  for b in taken.budgets}
        await stores.settle(taken.held, actual)
        watched = [b for b in taken.budgets if b.budget.alerts and actual[b.key]]
        if watched:
            if stores.shared:
                stores.spawn(self._alerts(watched, actual))
            else:
                await self._alerts(watched, actual)

    # -- budgets -------------------------------------------------------------------------
    def _budgets(self, owners: Sequence[tuple[Scope, str, Policy]]) -> list[_Budgeted]:
        if not any(policy.budgets for _, _, policy in owners):
            return []
        now = self._wall()
        found: list[_Budgeted] = []
        for scope, owner, policy in owners:
            for budget in policy.budgets:
                stamp, resets = self._period(budget.period, now)
                key = f"budget:{scope}:{owner}:{budget.period}:{budget.unit}:{stamp}"
                found.append(_Budgeted(scope, owner, budget, key, resets))
        return found

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

    async def _alerts(self, watched: list[_Budgeted], actual: dict[str, int]) -> None:
        """Emit an alert for each threshold this call's spend crossed."""
        for budgeted in watched:
            try:
                spent = await self._stores.spent(budgeted.key)
            except Exception:  # an alert is best effort; the budget itself holds
                _log.exception("could not read budget %s for its alerts", budgeted.key)
                continue
            limit = budgeted.budget.limit_units
            before = spent - actual[budgeted.key]
            for threshold in budgeted.budget.alerts:
                line = math.ceil(limit * threshold)
                if before < line <= spent:
                    self._stores.alerts.crossed(budgeted.scope, budgeted.owner,
                                                budgeted.budget, threshold, spent)

    async def _undo(self, taken: _Taken) -> None:
        for lease, local in taken.leases:
            await self._stores.leave(lease, local)
        if taken.held is not None:
            await self._stores.settle(taken.held, dict.fromkeys(
                (c.key for c in taken.held.reservation.charges), 0))


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


def _rate_limits(owners: Sequence[tuple[Scope, str, Policy]], tokens: int) -> list[Limit]:
    limits: list[Limit] = []
    for scope, owner, policy in owners:
        rpm, tpm = policy.limits.rpm, policy.limits.tpm
        if rpm:
            limits.append(Limit(f"rl:{scope}:{owner}:rpm", rpm, 60.0, rpm, 1))
        if tpm:
            limits.append(Limit(f"rl:{scope}:{owner}:tpm", tpm, 60.0, tpm, tokens))
    return limits


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
