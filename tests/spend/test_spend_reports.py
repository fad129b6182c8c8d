"""`spend_report` on SQLite and PostgreSQL: grouping, totals (requests counted once),
token kinds, the estimated share, half-open ranges, tenant and key filters, and days and
months in a time zone, across daylight-saving changes, checked against Python's own
calendar for zones with unusual offsets."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from _ledger_rows import attempt, insert_names, insert_rows
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.spend.reports import NOTHING, Dimension, SpendReport, spend_report

DEC = datetime(2026, 12, 1, tzinfo=UTC)


def by_group(report: SpendReport) -> dict[tuple[str | None, ...], int]:
    """Each group's cost."""
    return {tuple(row.group.values()): row.figures.cost_micro_usd for row in report.rows}


async def test_an_empty_ledger_reports_nothing(engine: AsyncEngine) -> None:
    report = await spend_report(engine, group_by=["tenant", "day"])
    assert report.rows == () and report.total == NOTHING
    assert report.total.estimated_share == 0.0


async def test_groups_and_totals(engine: AsyncEngine) -> None:
    await insert_rows(engine, [
        # One request, retried then fallen back to another model: three attempts.
        attempt(DEC, request_id="r1", model="gpt-4o-mini", cost_micro_usd=0, status=503,
                outcome="error", input_tokens=0, output_tokens=0),
        attempt(DEC, request_id="r1", model="gpt-4o-mini", cost_micro_usd=0, status=503,
                outcome="error", input_tokens=0, output_tokens=0),
        attempt(DEC, request_id="r1", model="claude-haiku-4-5", cost_micro_usd=2_500,
                input_tokens=1_000, output_tokens=300, cached_input_tokens=400,
                cache_write_tokens=50, reasoning_tokens=30),
        attempt(DEC, request_id="r2", cost_micro_usd=1_500, estimated=True),
        attempt(DEC, request_id="r3", tenant_id="beta", key_id="betakey000000001",
                cost_micro_usd=7_000_000),
        attempt(DEC, request_id="r4", tenant_id=None, key_id=None, cost_micro_usd=3),
    ])
    report = await spend_report(engine, group_by=["tenant", "model"])
    assert report.group_by == (Dimension.TENANT, Dimension.MODEL)
    assert by_group(report) == {("acme", "claude-haiku-4-5"): 2_500,
                                ("acme", "gpt-4o-mini"): 1_500,
                                ("beta", "gpt-4o-mini"): 7_000_000,
                                (None, "gpt-4o-mini"): 3}
    acme_mini = report.rows[1].figures
    assert (acme_mini.requests, acme_mini.attempts) == (2, 3)
    assert acme_mini.estimated_cost_micro_usd == 1_500 and acme_mini.estimated_share == 1.0
    haiku = report.rows[0].figures
    assert (haiku.input_tokens, haiku.output_tokens, haiku.cached_input_tokens,
            haiku.cache_write_tokens, haiku.reasoning_tokens) == (1_000, 300, 400, 50, 30)
    total = report.total
    assert (total.requests, total.attempts) == (4, 6)  # r1 once, though in two groups
    assert total.cost_micro_usd == 7_004_003 and total.cost_usd == Decimal("7.004003")
    assert total.estimated_attempts == 1
    assert total.estimated_share == pytest.approx(1_500 / 7_004_003)
    per_tenant = await spend_report(engine, group_by=["tenant", "tenant"])  # once
    assert by_group(per_tenant) == {("acme",): 4_000, ("beta",): 7_000_000, (None,): 3}
    ungrouped = await spend_report(engine)
    assert ungrouped.rows == () and ungrouped.total == total


async def test_every_dimension_groups(engine: AsyncEngine) -> None:
    await insert_rows(engine, [
        attempt(DEC, alias="chat", provider="openai", deployment="o/a", conversation_id="c1"),
        attempt(DEC, alias="fast", provider="anthropic", deployment="a/b", conversation_id="c1",
                key_id="acmekey000000002"),
        attempt(DEC, alias="fast", provider="anthropic", deployment="a/b")])
    expected = {"key": {("acmekey000000001",): 2_000, ("acmekey000000002",): 1_000},
                "alias": {("chat",): 1_000, ("fast",): 2_000},
                "provider": {("anthropic",): 2_000, ("openai",): 1_000},
                "deployment": {("a/b",): 2_000, ("o/a",): 1_000},
                "conversation": {("c1",): 2_000, (None,): 1_000},
                "month": {("2026-12",): 3_000}}
    for dim, groups in expected.items():
        assert by_group(await spend_report(engine, group_by=[dim])) == groups, dim
    with pytest.raises(ValueError, match="week"):
        await spend_report(engine, group_by=["week"])


async def test_the_range_is_half_open(engine: AsyncEngine) -> None:
    end = datetime(2027, 1, 1, tzinfo=UTC)
    await insert_rows(engine, [attempt(DEC - timedelta(microseconds=1), cost_micro_usd=1),
                               attempt(DEC, cost_micro_usd=10),
                               attempt(end - timedelta(microseconds=1), cost_micro_usd=100),
                               attempt(end, cost_micro_usd=1_000)])
    report = await spend_report(engine, start=DEC, end=end)
    assert report.total.cost_micro_usd == 110
    assert (report.start, report.end) == (DEC, end)
    paris = ZoneInfo("Europe/Paris")  # the same instants, given with another offset
    assert (await spend_report(engine, start=DEC.astimezone(paris), end=end.astimezone(paris))
            ).total.cost_micro_usd == 110
    assert (await spend_report(engine, start=DEC)).total.cost_micro_usd == 1_110
    assert (await spend_report(engine, end=DEC)).total.cost_micro_usd == 1
    assert (await spend_report(engine, start=end, end=DEC)).total == NOTHING
    with pytest.raises(ValueError, match="time zone"):
        await spend_report(engine, start=datetime(2026, 12, 1))


async def test_tenant_and_key_filters_keep_to_their_own(engine: AsyncEngine) -> None:
    await insert_names(engine, {"acme": "Acme Corp", "beta": "Beta"},
                       {"acmekey000000001": ("acme", "support-bot"),
                        "betakey000000001": ("beta", "beta-bot")})
    await insert_rows(engine, [
        attempt(DEC, cost_micro_usd=1),
        attempt(DEC, key_id="acmekey000000002", cost_micro_usd=10),
        attempt(DEC, tenant_id="beta", key_id="betakey000000001", cost_micro_usd=100),
        attempt(DEC, tenant_id=None, key_id=None, cost_micro_usd=1_000)])
    acme = await spend_report(engine, group_by=["tenant", "key"], tenant_id="acme")
    assert by_group(acme) == {("acme", "acmekey000000001"): 1, ("acme", "acmekey000000002"): 10}
    assert acme.total.cost_micro_usd == 11
    assert acme.tenant_names == {"acme": "Acme Corp"}
    assert acme.key_names == {"acmekey000000001": "support-bot"}  # the other was deleted
    # Another tenant's key under acme's filter finds nothing, not beta's spend.
    crossed = await spend_report(engine, group_by=["key"], tenant_id="acme",
                                 key_id="betakey000000001")
    assert crossed.rows == () and crossed.total == NOTHING and crossed.key_names == {}
    everyone = await spend_report(engine, group_by=["tenant"])
    assert by_group(everyone) == {("acme",): 11, ("beta",): 100, (None,): 1_000}
    assert everyone.tenant_names == {"acme": "Acme Corp", "beta": "Beta"}
    assert (await spend_report(engine, key_id="betakey000000001")).total.cost_micro_usd == 100
    hostile = await spend_report(engine, tenant_id="' OR 1=1 --")
    assert hostile.total == NOTHING


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris"))  # type: ignore[misc]


async def test_days_in_paris_across_both_daylight_saving_changes(engine: AsyncEngine) -> None:
    # 2026-03-29 is 23 hours long in Paris (02:00 -> 03:00), 2026-10-25 is 25 hours long.
    instants = [paris(2026, 3, 28, 23, 59, 59), paris(2026, 3, 29, 0, 0),
                paris(2026, 3, 29, 1, 59, 59), paris(2026, 3, 29, 3, 0),
                paris(2026, 3, 29, 23, 59, 59), paris(2026, 3, 30, 0, 0),
                paris(2026, 10, 24, 23, 59, 59), paris(2026, 10, 25, 0, 0),
                paris(2026, 10, 25, 2, 30), paris(2026, 10, 25, 2, 30).replace(fold=1),
                paris(2026, 10, 25, 23, 59, 59), paris(2026, 10, 26, 0, 0)]
    await insert_rows(engine, [attempt(at) for at in instants])
    report = await spend_report(engine, group_by=["day"], timezone="Europe/Paris")
    assert {row.group[Dimension.DAY]: row.figures.attempts for row in report.rows} == {
        "2026-03-28": 1, "2026-03-29": 4, "2026-03-30": 1,
        "2026-10-24": 1, "2026-10-25": 4, "2026-10-26": 1}
    utc = await spend_report(engine, group_by=["day"])  # the zone's default: UTC
    assert {row.group[Dimension.DAY] for row in utc.rows} == {
        "2026-03-28", "2026-03-29", "2026-10-24", "2026-10-25"}
    # A day of the report is a day of the zone: from its midnight to the next.
    one_day = await spend_report(engine, start=paris(2026, 10, 25), end=paris(2026, 10, 26),
                                 timezone="Europe/Paris")
    assert one_day.total.attempts == 4


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Lord_Howe",
                                  "Asia/Kathmandu", "America/Santiago", "Pacific/Chatham"])
async def test_days_and_months_agree_with_pythons_calendar(engine: AsyncEngine,
                                                           zone: str) -> None:
    """Half-hour daylight saving (Lord Howe), a +05:45 offset (Kathmandu), changes at
    midnight (Santiago), +12:45/+13:45 (Chatham): every day and month as Python sees it."""
    rng = random.Random(zone)
    start = datetime(2025, 12, 15, tzinfo=UTC)
    instants = [start + timedelta(seconds=rng.randrange(0, 400 * 86_400)) for _ in range(300)]
    # And the seconds around every offset change of the span.
    tz = ZoneInfo(zone)
    hour = start
    while hour < start + timedelta(days=400):
        if (hour + timedelta(hours=1)).astimezone(tz).utcoffset() != hour.astimezone(
                tz).utcoffset():
            for second in range(3595, 3605):
                instants.append(hour + timedelta(seconds=second))
        hour += timedelta(hours=1)
    await insert_rows(engine, [attempt(at) for at in instants])
    report = await spend_report(engine, group_by=["month", "day"], timezone=zone)
    local = [at.astimezone(tz) for at in instants]
    assert {(row.group[Dimension.MONTH], row.group[Dimension.DAY]): row.figures.attempts
            for row in report.rows} == Counter(
        (f"{d.year:04d}-{d.month:02d}", d.date().isoformat()) for d in local)
    months = [row.group[Dimension.MONTH] for row in report.rows]
    assert months == sorted(months)


async def test_an_unknown_zone_is_refused(engine: AsyncEngine) -> None:
    for zone in ("Mars/Olympus", "../../etc/passwd", "", "Europe/Paris\x00"):
        with pytest.raises(ValueError, match="time zone"):
            await spend_report(engine, timezone=zone)
