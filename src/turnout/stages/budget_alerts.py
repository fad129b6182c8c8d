"""Budget alerts: a budget's spend crossed one of its thresholds (50, 80, 100 % by
default). Each crossing is logged once as a warning on `turnout.budgets` (with the tenant,
the period and the fraction as structured fields for JSON logs) and counted for
`turnout_budget_alerts_total`; a soft budget is not enforced, so this is all it does."""

from __future__ import annotations

import logging
from collections import Counter

from turnout.tenancy.policy import Budget

_log = logging.getLogger("turnout.budgets")


class BudgetAlerts:
    """Counts and logs threshold crossings."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str, str, str]] = Counter()
        """(scope, owner, period, unit, threshold) -> crossings, for metrics."""

    def crossed(self, scope: str, owner: str, budget: Budget, threshold: float,
                spent: int) -> None:
        self.counts[(scope, owner, budget.period, budget.unit, f"{threshold:g}")] += 1
        from turnout.stages.quota import usd

        amount = (f"{usd(spent / 1_000_000)} of {usd(budget.usd)}" if budget.usd is not None
                  else f"{spent:,} of {budget.tokens:,} tokens")
        _log.warning("budget alert: %s %s spent %s of its %s%s budget (%g %%)",
                     scope, owner, amount, "" if budget.hard else "soft ", budget.period,
                     threshold * 100,
                     extra={"tenant_scope": scope, "owner": owner, "period": budget.period,
                            "threshold": threshold, "hard": budget.hard})
