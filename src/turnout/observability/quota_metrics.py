"""Gauges and counters of the quota stage's stores, read at scrape time: whether the
shared state is degraded (Redis away), how often it was lost, and budget alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from turnout.stages.shared_stores import SharedStores


class QuotaCollector:
    """Register on a registry: `registry.register(QuotaCollector(engine.resources.
    all_shared_stores))`; stores opened later are seen at the next scrape."""

    def __init__(self, stores: Callable[[], list[SharedStores]]) -> None:
        self._stores = stores

    def describe(self) -> Iterable[Metric]:
        return list(_families())

    def collect(self) -> Iterable[Metric]:
        degraded, lost, alerts = families = _families()
        all_stores = self._stores()
        shared = [s for s in all_stores if s.shared]
        degraded.add_metric([], float(any(s.degraded for s in shared)))
        lost.add_metric([], float(sum(s.degraded_total for s in shared)))
        counts: dict[tuple[str, str, str, str, str], int] = {}
        for stores in all_stores:
            for labels, n in stores.alerts.counts.items():
                counts[labels] = counts.get(labels, 0) + n
        for labels, n in sorted(counts.items()):
            alerts.add_metric(list(labels), float(n))
        return families


def _families() -> tuple[GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily]:
    return (
        GaugeMetricFamily("turnout_shared_state_degraded",
                          "1 while the shared state store (Redis) is unreachable and rate "
                          "limits and budgets use their per-process fallback."),
        CounterMetricFamily("turnout_shared_state_lost",
                            "Times the shared state store became unreachable."),
        CounterMetricFamily("turnout_budget_alerts",
                            "Budget threshold crossings.",
                            labels=("scope", "owner", "period", "unit", "threshold")),
    )
