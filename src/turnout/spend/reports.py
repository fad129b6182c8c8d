"""Chargeback reports: the spend ledger (`turnout_spend`, one row per upstream attempt)
summed by tenant, key, model, alias, provider, deployment, day, month or conversation
over a half-open range of time, with the totals of the whole range.

Everything is summed by the database (`GROUP BY`); only the groups come back. Days and
months are those of an IANA time zone (the budgets' `tenancy.budget_timezone` by
default): the zone becomes plain integers and UTC instants (`report_periods`), so the
same SQL runs on SQLite and PostgreSQL. Groups are sorted here, not by the database, so
both order them alike whatever their collations.

    report = await spend_report(engine, group_by=["tenant", "model"],
                                start=datetime(2026, 12, 1, tzinfo=UTC),
                                end=datetime(2027, 1, 1, tzinfo=UTC))
    for row in report.rows:
        print(row.group, row.figures.cost_micro_usd)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    RowMapping,
    Select,
    and_,
    case,
    cast,
    distinct,
    extract,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import FromClause

from turnout.spend.report_periods import (
    DAY_SHIFT_S,
    day_label,
    month_label,
    month_starts,
    offset_periods,
    report_zone,
)
from turnout.tenancy.tables import spend, tenants, virtual_keys


class Dimension(enum.StrEnum):
    """What a report may be grouped by."""

    TENANT = "tenant"
    """The tenant id (none for traffic on the gateway's static keys)."""
    KEY = "key"
    """The virtual key id (none for static keys)."""
    MODEL = "model"
    """The upstream model that answered (`gpt-4o-mini`)."""
    ALIAS = "alias"
    """The model name the client asked for (a route)."""
    PROVIDER = "provider"
    DEPLOYMENT = "deployment"
    DAY = "day"
    """The calendar day in the report's time zone (`2026-12-01`)."""
    MONTH = "month"
    """The calendar month in the report's time zone (`2026-12`)."""
    CONVERSATION = "conversation"
    """The conversation id the client sent (none when it sent none)."""


TOKEN_KINDS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
               "reasoning_tokens")
"""The ledger's token counts, each summed on its own."""

_COLUMN = {Dimension.TENANT: spend.c.tenant_id, Dimension.KEY: spend.c.key_id,
           Dimension.MODEL: spend.c.model, Dimension.ALIAS: spend.c.alias,
           Dimension.PROVIDER: spend.c.provider, Dimension.DEPLOYMENT: spend.c.deployment,
           Dimension.CONVERSATION: spend.c.conversation_id}
_NAME_CHUNK = 500
"""Ids per `IN (...)` when looking names up (well below SQLite's bound-variable limit)."""


@dataclass(frozen=True, slots=True)
class SpendFigures:
    """What a group of attempts (or the whole range) used and cost."""

    requests: int
    """Distinct client requests (a retried or fallen-back request counts once)."""
    attempts: int
    """Upstream attempts (retries, fallbacks and hedges each count)."""
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_micro_usd: int
    """The cost in millionths of a US dollar, exact."""
    estimated_cost_micro_usd: int
    """The part of `cost_micro_usd` that is estimated: attempts whose provider reported no
    usage were costed from offline token counts."""
    estimated_attempts: int

    @property
    def cost_usd(self) -> Decimal:
        """The cost in US dollars, exact to the micro-dollar."""
        return Decimal(self.cost_micro_usd).scaleb(-6)

    @property
    def estimated_share(self) -> float:
        """The estimated part of the cost, from 0 to 1 (0 when nothing was spent)."""
        return self.estimated_cost_micro_usd / self.cost_micro_usd if self.cost_micro_usd else 0.0


NOTHING = SpendFigures(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_FIGURE_NAMES = tuple(f.name for f in fields(SpendFigures))


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group of the report."""

    group: Mapping[Dimension, str | None]
    """Its value of each dimension grouped by, in the report's order (None: no tenant, no
    key or no conversation)."""
    figures: SpendFigures


@dataclass(frozen=True, slots=True)
class SpendReport:
    """A chargeback report."""

    group_by: tuple[Dimension, ...]
    start: datetime | None
    """The first instant counted (UTC); None for the beginning of the ledger."""
    end: datetime | None
    """The first instant not counted (UTC); None for no end."""
    timezone: str
    """The IANA zone whose days and months the report uses."""
    rows: tuple[SpendRow, ...]
    """The groups, sorted by their values (None last); empty when not grouped."""
    total: SpendFigures
    """The whole range (its requests counted once even when their attempts fall in
    several groups)."""
    tenant_names: Mapping[str, str] = field(default_factory=dict)
    """The name of each tenant the rows name (when grouped by tenant)."""
    key_names: Mapping[str, str] = field(default_factory=dict)
    """The name of each virtual key the rows name (when grouped by key)."""


async def spend_report(engine: AsyncEngine, *, group_by: Iterable[Dimension | str] = (),
                       start: datetime | None = None, end: datetime | None = None,
                       tenant_id: str | None = None, key_id: str | None = None,
                       timezone: str = "UTC") -> SpendReport:
    """The spend of attempts started in `[start, end)` (aware datetimes), of `tenant_id`
    and `key_id` when given, grouped by `group_by` (duplicates ignored) with days and
    months in `timezone`. ValueError for an unknown dimension or zone, or a naive time."""
    dims = tuple(dict.fromkeys(Dimension(d) for d in group_by))
    zone = report_zone(timezone)
    start_utc, end_utc = _utc_bound(start, "start"), _utc_bound(end, "end")
    where = _filters(start_utc, end_utc, tenant_id, key_id)
    async with engine.connect() as conn:
        total, first, last = await _totals(conn, where)
        rows: tuple[SpendRow, ...] = ()
        if dims and first is not None and last is not None:
            keys = _group_keys(dims, zone, first, last, engine.dialect.name)
            rows = tuple(sorted(await _groups(conn, dims, keys, where), key=_order))
        tenant_names = await _names(conn, tenants.c.id, tenants.c.name,
                                    _values(rows, Dimension.TENANT), None)
        key_names = await _names(conn, virtual_keys.c.id, virtual_keys.c.name,
                                 _values(rows, Dimension.KEY),
                                 None if tenant_id is None
                                 else virtual_keys.c.tenant_id == tenant_id)
    return SpendReport(dims, start_utc, end_utc, timezone, rows, total, tenant_names,
                       key_names)


def _utc_bound(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{name} needs a time zone (a naive datetime names no instant)")
    return value.astimezone(UTC)  # SQLite stores times without their offset: all in UTC


def _filters(start: datetime | None, end: datetime | None, tenant_id: str | None,
             key_id: str | None) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if start is not None:
        clauses.append(spend.c.started_at >= start)
    if end is not None:
        clauses.append(spend.c.started_at < end)
    if tenant_id is not None:
        clauses.append(spend.c.tenant_id == tenant_id)
    if key_id is not None:
        clauses.append(spend.c.key_id == key_id)
    return and_(True, *clauses)


def _measures(source: FromClause) -> list[ColumnElement[Any]]:
    cost = source.c.cost_micro_usd
    return [
        func.count(distinct(source.c.request_id)).label("requests"),
        func.count().label("attempts"),
        *(func.coalesce(func.sum(source.c[kind]), 0).label(kind) for kind in TOKEN_KINDS),
        func.coalesce(func.sum(cost), 0).label("cost_micro_usd"),
        func.coalesce(func.sum(case((source.c.estimated, cost), else_=0)), 0)
        .label("estimated_cost_micro_usd"),
        func.coalesce(func.sum(case((source.c.estimated, 1), else_=0)), 0)
        .label("estimated_attempts"),
    ]


def _figures(row: RowMapping) -> SpendFigures:
    # PostgreSQL sums BIGINT as NUMERIC (a Decimal here): every figure is a whole number.
    return SpendFigures(**{name: int(row[name]) for name in _FIGURE_NAMES})


async def _totals(conn: AsyncConnection, where: ColumnElement[bool]
                  ) -> tuple[SpendFigures, datetime | None, datetime | None]:
    """The whole range's figures, and the first and last attempt's start in it."""
    query = select(*_measures(spend), func.min(spend.c.started_at).label("first"),
                   func.max(spend.c.started_at).label("last")).where(where)
    row = (await conn.execute(query)).one()._mapping
    if not row["attempts"]:
        return NOTHING, None, None
    return _figures(row), _aware(row["first"]), _aware(row["last"])


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite's MIN() of a time may come back as its text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _group_keys(dims: Sequence[Dimension], zone: ZoneInfo, first: datetime, last: datetime,
                dialect: str) -> list[ColumnElement[Any]]:
    keys: list[ColumnElement[Any]] = []
    for dim in dims:
        if dim is Dimension.DAY:
            keys.append(_local_day(zone, first, last, dialect))
        elif dim is Dimension.MONTH:
            keys.append(_local_month(zone, first, last))
        else:
            keys.append(_COLUMN[dim])
    return keys


def _local_day(zone: ZoneInfo, first: datetime, last: datetime, dialect: str
               ) -> ColumnElement[int]:
    """Days since 0001-01-01 of the wall-clock date in `zone` of each attempt's start:
    (Unix seconds + the zone's offset then + the seconds from year one to 1970) // 86400.
    The offset is a CASE over the span's daylight-saving changes (usually 0 to 2 a year)."""
    periods = offset_periods(zone, first, last)
    offset: ColumnElement[int] = literal(periods[-1].offset_s, BigInteger)
    if len(periods) > 1:
        offset = case(*((spend.c.started_at < p.until, literal(p.offset_s, BigInteger))
                        for p in periods[:-1]), else_=offset)
    shifted = _unix_seconds(dialect) + offset + literal(DAY_SHIFT_S, BigInteger)
    return shifted // literal(86_400, BigInteger)


def _unix_seconds(dialect: str) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.floor(extract("epoch", spend.c.started_at)), BigInteger)
    if dialect == "sqlite":  # times are stored as UTC text; %s is whole seconds
        return cast(func.strftime("%s", spend.c.started_at), BigInteger)
    raise ValueError(f"spend reports run on SQLite or PostgreSQL, not {dialect}")


def _local_month(zone: ZoneInfo, first: datetime, last: datetime) -> ColumnElement[int]:
    """`year * 12 + month - 1` of the month in `zone` of each attempt's start: a CASE
    over the UTC instants the span's months end."""
    months = month_starts(zone, first, last)
    final: ColumnElement[int] = literal(months[-1][1], BigInteger)
    if len(months) == 1:
        return final
    return case(*((spend.c.started_at < ends, literal(number, BigInteger))
                  for ends, number in months[:-1]), else_=final)


async def _groups(conn: AsyncConnection, dims: Sequence[Dimension],
                  keys: Sequence[ColumnElement[Any]], where: ColumnElement[bool]
                  ) -> list[SpendRow]:
    # The keys are computed in a subquery and grouped by name outside it: PostgreSQL would
    # not see `CASE ... $1 ...` in the select list and `CASE ... $7 ...` in GROUP BY as
    # the same expression.
    measured = [spend.c.request_id, spend.c.estimated, spend.c.cost_micro_usd,
                *(spend.c[kind] for kind in TOKEN_KINDS)]
    inner = select(*(key.label(f"g{i}") for i, key in enumerate(keys)), *measured
                   ).where(where).subquery("attempts")
    grouped = [inner.c[f"g{i}"] for i in range(len(keys))]
    query: Select[Any] = select(*grouped, *_measures(inner)).group_by(*grouped)
    rows = []
    for row in (await conn.execute(query)).mappings():
        group = {dim: _label(dim, row[f"g{i}"]) for i, dim in enumerate(dims)}
        rows.append(SpendRow(group, _figures(row)))
    return rows


def _label(dim: Dimension, value: Any) -> str | None:
    if value is None:
        return None
    if dim is Dimension.DAY:
        return day_label(int(value))
    if dim is Dimension.MONTH:
        return month_label(int(value))
    return str(value)


def _order(row: SpendRow) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, value or "") for value in row.group.values())


def _values(rows: Iterable[SpendRow], dim: Dimension) -> list[str]:
    return sorted({v for row in rows if (v := row.group.get(dim)) is not None})


async def _names(conn: AsyncConnection, id_column: ColumnElement[str],
                 name_column: ColumnElement[str], ids: Sequence[str],
                 scope: ColumnElement[bool] | None) -> dict[str, str]:
    names: dict[str, str] = {}
    for at in range(0, len(ids), _NAME_CHUNK):
        query = select(id_column, name_column).where(id_column.in_(ids[at:at + _NAME_CHUNK]))
        if scope is not None:
            query = query.where(scope)
        names.update((str(i), str(n)) for i, n in await conn.execute(query))
    return names
