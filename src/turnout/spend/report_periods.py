"""Calendar arithmetic for spend reports: report bounds given as dates or RFC 3339 times,
and the UTC offsets and month starts of an IANA time zone over a span of time.

A report's days and months are the zone's, so a day across a daylight-saving change is
23 or 25 hours long. The databases know nothing of zones (SQLite has no time zone
database, and PostgreSQL's may differ from Python's), so the zone is resolved here, in
Python, into a handful of plain numbers: the offset in force over each period of the span
(one period per daylight-saving change) and the UTC instant each month starts. The SQL
then only adds integers and compares times, identically on both databases.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

# [0-9], not \d: \d also matches other scripts' digits (Arabic-Indic, Devanagari...).
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                       r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})")
DATE_OR_DATETIME = f"^(?:{_DATE.pattern}|{_DATETIME.pattern})$"
"""The shapes a report bound may take: `2026-12-01` (midnight in the report's zone) or an
RFC 3339 time with its offset (`2026-12-01T08:30:00Z`, `...+01:00`)."""

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_SAMPLE_STEP = timedelta(hours=12)
"""Offsets are compared this far apart, then a change is narrowed to the second: no zone
changes its offset twice within half a day."""


class BadBound(ValueError):
    """A report bound that is neither a date nor an RFC 3339 time with an offset."""


@functools.cache  # the zone database does not change under a running process
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows, sorted (what a report's zone may be)."""
    return tuple(sorted(available_timezones()))


def report_zone(name: str) -> ZoneInfo:
    """The zone named `name` (ValueError if it is not an IANA zone name)."""
    if not _ZONE_NAME.fullmatch(name) or len(name) > 64 or name not in zone_names():
        raise ValueError(f"unknown time zone {name[:80]!r}: use an IANA name such as UTC "
                         "or Europe/Paris")
    return ZoneInfo(name)


def parse_bound(text: str, zone: ZoneInfo) -> datetime:
    """The UTC instant `text` names: a date is its midnight in `zone`. Instants beyond
    what a `datetime` holds are clamped to `EARLIEST` or `LATEST`."""
    if match := _DATE.fullmatch(text):
        year, month, day = (int(g) for g in match.groups())
        try:
            local = datetime(year, month, day, tzinfo=zone)
        except ValueError:
            raise BadBound(f"{text[:40]!r} is not a calendar date") from None
        return _to_utc(local)
    if match := _DATETIME.fullmatch(text):
        return _parse_datetime(text, match)
    raise BadBound(f"{text[:40]!r} is neither a date (2026-12-01) nor an RFC 3339 time with "
                   "its offset (2026-12-01T00:00:00Z)")


def _parse_datetime(text: str, match: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))  # RFC 3339 allows more digits
    off_hours, off_minutes = (0, 0) if offset == "Z" else (int(offset[1:3]), int(offset[4:6]))
    try:
        if off_minutes > 59:
            raise ValueError
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=off_hours, minutes=off_minutes))
        local = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:
        raise BadBound(f"{text[:40]!r} is not a valid time") from None
    return _to_utc(local)


def _to_utc(local: datetime) -> datetime:
    try:
        return local.astimezone(UTC)
    except OverflowError:  # 0001-01-01 east of Greenwich, 9999-12-31 west of it
        return EARLIEST if local.year == 1 else LATEST


@dataclass(frozen=True, slots=True)
class OffsetPeriod:
    """A stretch of time over which a zone's UTC offset stays the same."""

    until: datetime | None
    """The UTC instant it ends (exclusive); None for the last period."""
    offset_s: int
    """Seconds to add to UTC for the zone's wall-clock time."""


def offset_periods(zone: ZoneInfo, first: datetime, last: datetime) -> list[OffsetPeriod]:
    """The offsets `zone` has from `first` to `last` (UTC instants, inclusive), in order."""
    periods: list[OffsetPeriod] = []
    before, current = first, _offset(zone, first)
    while before < last:
        probe = min(before + _SAMPLE_STEP, last)
        if (probe_offset := _offset(zone, probe)) != current:
            change = _first_with_offset(zone, before, probe, current)
            periods.append(OffsetPeriod(change, current))
            current = probe_offset
        before = probe
    periods.append(OffsetPeriod(None, current))
    return periods


def _offset(zone: ZoneInfo, instant: datetime) -> int:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def _first_with_offset(zone: ZoneInfo, low: datetime, high: datetime, known: int) -> datetime:
    """The first whole second after `low` (which has offset `known`) up to `high` (which
    has another) whose offset is not `known`."""
    low_s, high_s = int(low.timestamp()), int(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == known:
            low_s = middle
        else:
            high_s = middle
    return datetime.fromtimestamp(high_s, UTC)


def month_starts(zone: ZoneInfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """The months of `zone` from the one holding `first` to the one holding `last`: each
    month's number (`year * 12 + month - 1`) and the UTC instant the next one starts."""
    local = first.astimezone(zone)
    year, month = local.year, local.month
    months: list[tuple[datetime, int]] = []
    while True:
        next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
        if next_year > 9999:
            months.append((LATEST, year * 12 + month - 1))
            return months
        starts = _to_utc(datetime(next_year, next_month, 1, tzinfo=zone))
        months.append((starts, year * 12 + month - 1))
        if starts > last:
            return months
        year, month = next_year, next_month


def month_label(number: int) -> str:
    """`2026-12` for the month numbered `2026 * 12 + 11`."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


DAY_SHIFT_S = (date(1970, 1, 1).toordinal() - 1) * 86_400
"""Seconds from 0001-01-01 to the Unix epoch: added before dividing by a day, so that the
quotient is the day's ordinal minus one and is never negative (integer division then
floors on both databases)."""


def day_label(days_since_year_one: int) -> str:
    """The ISO date of a day counted from 0001-01-01 (day 0)."""
    return date.fromordinal(days_since_year_one + 1).isoformat()
