"""Report bounds (a date is its midnight in the report's zone; an RFC 3339 time keeps its
instant) and a zone's offsets over a span."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from turnout.spend.report_periods import (
    EARLIEST,
    LATEST,
    BadBound,
    offset_periods,
    parse_bound,
    report_zone,
)

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("text", "zone", "instant"), [
    ("2026-12-01", PARIS, datetime(2026, 11, 30, 23, tzinfo=UTC)),
    ("2026-07-01", PARIS, datetime(2026, 6, 30, 22, tzinfo=UTC)),
    ("2026-12-01", ZoneInfo("UTC"), datetime(2026, 12, 1, tzinfo=UTC)),
    ("2026-12-01T08:30:00Z", PARIS, datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
    ("2026-12-01T08:30:00+01:00", PARIS, datetime(2026, 12, 1, 7, 30, tzinfo=UTC)),
    ("2026-12-01T08:30:00.1234567-05:30", PARIS,
     datetime(2026, 12, 1, 14, 0, 0, 123456, tzinfo=UTC)),
    ("0001-01-01", PARIS, EARLIEST),  # before what a datetime holds in UTC
    ("0001-01-01T00:00:00+23:59", PARIS, EARLIEST),
    ("9999-12-31T23:59:59-23:59", PARIS, LATEST),
])
def test_bounds(text: str, zone: ZoneInfo, instant: datetime) -> None:
    assert parse_bound(text, zone) == instant


@pytest.mark.parametrize("text", [
    "2026-02-30", "2026-13-01", "2026-12-01T08:30:00", "2026-12-01 08:30:00Z",
    "2026-12-01T24:00:00Z", "2026-12-01T23:59:60Z", "2026-12-01T08:30:00+01:60",
    "2026-12-01t08:30:00z", "20261201", "yesterday", "", "2026-12-01\x00",
    "\u0662\u0660\u0662\u0666-\u0661\u0662-\u0660\u0661"])  # Arabic-Indic digits
def test_malformed_bounds_are_refused(text: str) -> None:
    with pytest.raises(BadBound):
        parse_bound(text, PARIS)


def test_offsets_over_a_year_change_at_the_exact_second() -> None:
    periods = offset_periods(PARIS, datetime(2026, 1, 1, tzinfo=UTC),
                             datetime(2026, 12, 31, tzinfo=UTC))
    assert [(p.until, p.offset_s) for p in periods] == [
        (datetime(2026, 3, 29, 1, tzinfo=UTC), 3600),
        (datetime(2026, 10, 25, 1, tzinfo=UTC), 7200),
        (None, 3600)]
    assert offset_periods(ZoneInfo("Asia/Kolkata"), datetime(2026, 1, 1, tzinfo=UTC),
                          datetime(2030, 1, 1, tzinfo=UTC))[0].offset_s == 19_800


def test_zone_names_are_iana_names_only() -> None:
    assert report_zone("Europe/Paris") == PARIS
    for bad in ("europe/paris", "/etc/passwd", "Europe/../Europe/Paris", "Paris", "UTC "):
        with pytest.raises(ValueError, match="unknown time zone"):
            report_zone(bad)
