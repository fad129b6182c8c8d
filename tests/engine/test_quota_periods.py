"""Budget periods in a time zone, and how rate-limit resets are written."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from turnout.stages.quota import _duration, _period, usd

PARIS = ZoneInfo("Europe/Paris")


def test_a_day_ends_at_the_zones_midnight_across_a_dst_change() -> None:
    # 2026-03-29 is 23 hours long in Paris (clocks go forward at 02:00).
    local = datetime(2026, 3, 29, 12, 0, tzinfo=PARIS)
    stamp, resets = _period("day", local)
    assert stamp == "2026-03-29"
    assert resets == datetime(2026, 3, 30, tzinfo=PARIS)
    assert resets is not None and resets.utcoffset() is not None
    assert resets.astimezone(UTC) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    # Just before midnight UTC is already the next day in Paris.
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC).astimezone(PARIS)
    assert _period("day", late)[0] == "2027-01-01"


def test_months_roll_over_the_year_and_lifetime_never_resets() -> None:
    stamp, resets = _period("month", datetime(2026, 12, 15, tzinfo=PARIS))
    assert stamp == "2026-12" and resets == datetime(2027, 1, 1, tzinfo=PARIS)
    assert _period("total", datetime(2026, 12, 15, tzinfo=PARIS)) == ("all", None)


@pytest.mark.parametrize(("seconds", "written"), [
    (0.0201, "21ms"), (1.0, "1s"), (1.23, "1.3s"), (59.9, "59.9s"), (360, "6m0s"),
    (61.2, "1m2s")])
def test_reset_durations_are_written_as_openai_writes_them(seconds: float,
                                                           written: str) -> None:
    assert _duration(seconds) == written


def test_small_budgets_are_not_rounded_to_zero_dollars() -> None:
    assert usd(25) == "$25.00" and usd(1234.5) == "$1,234.50"
    assert usd(0.008) == "$0.008" and usd(0) == "$0.00"
