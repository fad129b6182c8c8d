"""Gauges and counters of the spend ledger's writers, read at scrape time: records written,
waiting in memory, spilled to the journal only, and failed database writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from turnout.spend.writer import LedgerWriter


class SpendCollector:
    """Register on a registry: `registry.register(SpendCollector(engine.resources.
    all_spend_ledgers))`; ledgers opened later are seen at the next scrape."""

    def __init__(self, writers: Callable[[], list[LedgerWriter]]) -> None:
        self._writers = writers

    def describe(self) -> Iterable[Metric]:
        return list(_families())

    def collect(self) -> Iterable[Metric]:
        families = _families()
        written, pending, spilled, failures, replayed, journal, degraded = families
        writers = self._writers()
        written.add_metric([], float(sum(w.written for w in writers)))
        pending.add_metric([], float(sum(w.pending for w in writers)))
        spilled.add_metric([], float(sum(w.spilled for w in writers)))
        failures.add_metric([], float(sum(w.write_failures for w in writers)))
        replayed.add_metric([], float(sum(w.replayed for w in writers)))
        journal.add_metric([], float(sum(w.journal_failures for w in writers)))
        degraded.add_metric([], float(any(w.degraded for w in writers)))
        return families


def _families() -> tuple[CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
                         CounterMetricFamily, CounterMetricFamily, CounterMetricFamily,
                         GaugeMetricFamily]:
    return (
        CounterMetricFamily("turnout_spend_records_written",
                            "Spend records written to the database (replays included)."),
        GaugeMetricFamily("turnout_spend_records_pending",
                          "Spend records waiting in memory for the database."),
        GaugeMetricFamily("turnout_spend_records_spilled",
                          "Spend records kept only in the local journal (the in-memory queue "
                          "was full), written when the database is back."),
        CounterMetricFamily("turnout_spend_write_failures",
                            "Failed spend ledger database writes (each is retried)."),
        CounterMetricFamily("turnout_spend_records_replayed",
                            "Spend records written from the journals of stopped gateway "
                            "processes."),
        CounterMetricFamily("turnout_spend_journal_failures",
                            "Spend journal lines that could not be written to disk."),
        GaugeMetricFamily("turnout_spend_degraded",
                          "1 while the spend ledger cannot write to its database."),
    )
