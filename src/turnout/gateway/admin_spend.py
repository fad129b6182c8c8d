"""The admin API's chargeback reports over the spend ledger.

    GET /admin/v1/spend?group_by=tenant,model&from=2026-12-01&to=2027-01-01
    GET /admin/v1/tenants/{tenant_id}/spend?group_by=key&group_by=day

The first is the admin key's, over every tenant (and the gateway's static keys, whose
tenant is null); the second the admin key's or the tenant's own key's (another tenant's id
is a 404, as for every tenant resource), over that tenant alone: its `tenant_id` is the
path's, never a parameter. Every parameter is checked against the schema the document
states; anything else, an unknown parameter or one given twice included, is a 400. Costs
are integer micro-dollars and the same as an exact decimal string of US dollars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from turnout.config.runtime import TenancySettings
from turnout.gateway.admin import AdminApi, AdminCaller, AdminError, json_response
from turnout.gateway.admin_spec import TENANT_ID_PARAM, Access, AdminRoute, QueryParam
from turnout.spend.report_periods import (
    EARLIEST,
    LATEST,
    BadBound,
    parse_bound,
    report_zone,
    zone_names,
)
from turnout.spend.reports import Dimension, SpendFigures, SpendReport, spend_report
from turnout.tenancy import keys
from turnout.tenancy.records import TENANT_ID

_DIMENSION = "|".join(d.value for d in Dimension)
GROUP_BY_PATTERN = f"^(?:{_DIMENSION})(?:,(?:{_DIMENSION}))*$"
"""One `group_by` value: dimensions separated by commas (`tenant,model`)."""
_MICRO_USD = r"^-?[0-9]+\.[0-9]{6}$"


class SpendFiguresView(BaseModel):
    """What a group of upstream attempts used and cost."""

    model_config = ConfigDict(extra="forbid")

    requests: int = Field(description="Distinct client requests (retries and fallbacks of "
                                      "one request count once).")
    attempts: int = Field(description="Upstream attempts: every retry, fallback and hedge.")
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = Field(description="Input tokens read from a prompt cache.")
    cache_write_tokens: int = Field(description="Input tokens written to a prompt cache.")
    reasoning_tokens: int = Field(description="Output tokens spent thinking.")
    cost_micro_usd: int = Field(description="The cost in millionths of a US dollar, exact.")
    cost_usd: str = Field(pattern=_MICRO_USD, examples=["12.345678"],
                          description="The same in US dollars, as an exact decimal string.")
    estimated_cost_micro_usd: int = Field(
        description="The part of the cost that is an estimate (the provider reported no "
                    "usage, so tokens were counted offline).")
    estimated_cost_usd: str = Field(pattern=_MICRO_USD)
    estimated_attempts: int
    estimated_share: float = Field(description="estimated_cost / cost, from 0 to 1 (0 when "
                                               "nothing was spent).")

    @classmethod
    def of(cls, figures: SpendFigures) -> SpendFiguresView:
        return cls(requests=figures.requests, attempts=figures.attempts,
                   input_tokens=figures.input_tokens, output_tokens=figures.output_tokens,
                   cached_input_tokens=figures.cached_input_tokens,
                   cache_write_tokens=figures.cache_write_tokens,
                   reasoning_tokens=figures.reasoning_tokens,
                   cost_micro_usd=figures.cost_micro_usd, cost_usd=usd(figures.cost_micro_usd),
                   estimated_cost_micro_usd=figures.estimated_cost_micro_usd,
                   estimated_cost_usd=usd(figures.estimated_cost_micro_usd),
                   estimated_attempts=figures.estimated_attempts,
                   estimated_share=round(figures.estimated_share, 6))


class SpendRowView(SpendFiguresView):
    """One group of a report."""

    group: dict[str, str | None] = Field(
        description="The group's value of each dimension grouped by: `tenant` and `key` "
                    "ids (null for the gateway's static keys), `model`, `alias`, "
                    "`provider`, `deployment`, `day` (`2026-12-01`), `month` (`2026-12`), "
                    "`conversation` (null when the client sent none).")
    names: dict[str, str] = Field(description="Display names of the group's `tenant` and "
                                              "`key`, where they still exist.")


class SpendReportView(BaseModel):
    """A chargeback report: its groups and the total of the whole range."""

    model_config = ConfigDict(extra="forbid")

    group_by: list[Dimension]
    start: datetime | None = Field(description="The first instant counted (null: the "
                                               "ledger's beginning).")
    end: datetime | None = Field(description="The first instant not counted (null: now).")
    timezone: str = Field(description="The IANA zone of the report's days and months.")
    currency: Literal["USD"] = "USD"
    data: list[SpendRowView] = Field(description="The groups, sorted by their values "
                                                 "(nulls last); empty when not grouped.")
    total: SpendFiguresView = Field(description="The whole range: each request counted "
                                                "once, even when its attempts fall in "
                                                "several groups.")

    @classmethod
    def of(cls, report: SpendReport) -> SpendReportView:
        rows = []
        for row in report.rows:
            names = {}
            if (tenant := row.group.get(Dimension.TENANT)) in report.tenant_names:
                names["tenant"] = report.tenant_names[str(tenant)]
            if (key := row.group.get(Dimension.KEY)) in report.key_names:
                names["key"] = report.key_names[str(key)]
            figures = SpendFiguresView.of(row.figures).model_dump()
            rows.append(SpendRowView(group={d.value: v for d, v in row.group.items()},
                                     names=names, **figures))
        return cls(group_by=list(report.group_by), start=report.start, end=report.end,
                   timezone=report.timezone, data=rows, total=SpendFiguresView.of(report.total))


def usd(micro_usd: int) -> str:
    """`1234567` micro-dollars as `"1.234567"`."""
    sign = "-" if micro_usd < 0 else ""
    whole, micro = divmod(abs(micro_usd), 1_000_000)
    return f"{sign}{whole}.{micro:06d}"


_BOUND_SCHEMA = {"anyOf": [{"type": "string", "format": "date"},
                           {"type": "string", "format": "date-time"}]}
GROUP_BY = QueryParam(
    "group_by", "Dimensions to group by, repeated or comma-separated: "
                f"{', '.join(d.value for d in Dimension)}. None: the total alone.",
    # No maxItems or maxLength: a value past them could only be refused, while
    # duplicates are harmless (each dimension counts once) and the server's request-line
    # limit bounds them all.
    {"type": "array", "items": {"type": "string", "pattern": GROUP_BY_PATTERN}},
    ["tenant,model"])
FROM = QueryParam("from", "The first instant counted: a date (its midnight in `timezone`) "
                          "or an RFC 3339 time with its offset. Default: the beginning.",
                  _BOUND_SCHEMA, "2026-12-01")
TO = QueryParam("to", "The first instant not counted (the range is half-open: December "
                      "is from=2026-12-01&to=2027-01-01). Default: no end. A `to` before "
                      "`from` is an empty range.", _BOUND_SCHEMA, "2027-01-01")
TENANT_FILTER = QueryParam("tenant_id", "Only this tenant's spend.",
                           {"type": "string", "pattern": f"^{TENANT_ID.pattern}$",
                            "maxLength": 63}, "acme")
KEY_FILTER = QueryParam("key_id", "Only this virtual key's spend.",
                        {"type": "string", "pattern": "^[a-z2-7]{16}$"}, "abcdefghijklmnop")
FORMAT = QueryParam("format", "The answer's format: JSON.", {"type": "string",
                                                              "enum": ["json"]})


def zone_param() -> QueryParam:
    return QueryParam("timezone", "The IANA zone whose days and months the report uses, "
                                  "and whose midnight a date in `from`/`to` is. Default: "
                                  "`tenancy.budget_timezone`.",
                      {"type": "string", "enum": list(zone_names())}, "Europe/Paris")


def spend_operations(api: AdminApi) -> list[AdminRoute]:
    """The report operations, for `AdminApi.routes`."""
    endpoints = _SpendEndpoints(api)
    zone = zone_param()
    tags = ("spend",)
    return [
        AdminRoute("GET", "/spend", endpoints.everyone, "getSpendReport",
                   "Spend of every tenant, grouped", Access.ADMIN, {200: SpendReportView},
                   query=(GROUP_BY, FROM, TO, TENANT_FILTER, KEY_FILTER, zone, FORMAT),
                   description="Chargeback: the spend ledger summed by the dimensions "
                               "asked, over a half-open range, with the total.",
                   tags=tags),
        AdminRoute("GET", "/tenants/{tenant_id}/spend", endpoints.tenant, "getTenantSpend",
                   "A tenant's spend, grouped", Access.TENANT, {200: SpendReportView},
                   params=(TENANT_ID_PARAM,), query=(GROUP_BY, FROM, TO, KEY_FILTER, zone,
                                                     FORMAT),
                   description="The same report, over one tenant.", tags=tags),
    ]


@dataclass(frozen=True, slots=True)
class _Query:
    group_by: tuple[Dimension, ...]
    start: datetime | None
    end: datetime | None
    tenant_id: str | None
    key_id: str | None
    timezone: str


class _SpendEndpoints:
    def __init__(self, api: AdminApi) -> None:
        self._api = api

    async def everyone(self, http: web.Request, caller: AdminCaller) -> web.Response:
        settings = self._settings()
        query = _parse(http, settings, tenant_filter=True)
        return await self._answer(settings, query)

    async def tenant(self, http: web.Request, caller: AdminCaller) -> web.Response:
        settings = self._settings()
        tenant = await self._api.visible_tenant(http, caller)  # 404 before any 400
        query = _parse(http, settings, tenant_filter=False)
        return await self._answer(settings, _Query(query.group_by, query.start, query.end,
                                                   tenant.id, query.key_id, query.timezone))

    async def _answer(self, settings: TenancySettings, query: _Query) -> web.Response:
        engine = await self._api.engine.resources.sql_engine(settings.database_url)
        report = await spend_report(engine, group_by=query.group_by, start=query.start,
                                    end=query.end, tenant_id=query.tenant_id,
                                    key_id=query.key_id, timezone=query.timezone)
        return json_response(SpendReportView.of(report))

    def _settings(self) -> TenancySettings:
        settings = self._api.engine.runtime.tenancy
        if settings is None:
            raise AdminError(404, "not_found", "Tenancy is not enabled on this gateway.")
        return settings


def _parse(http: web.Request, settings: TenancySettings, *, tenant_filter: bool) -> _Query:
    """The report's parameters from the query string (400 for anything amiss)."""
    allowed = {"group_by", "from", "to", "key_id", "timezone", "format"}
    if tenant_filter:
        allowed.add("tenant_id")
    for name in http.query:
        if name not in allowed:
            raise _invalid(f"unknown query parameter {name[:60]!r} (expected: "
                           f"{', '.join(sorted(allowed))})")
    values = {name: _single(http, name) for name in allowed - {"group_by"}}
    if values["format"] not in (None, "json"):
        raise _invalid("format: only json (the CLI writes tables and CSV)")
    try:
        zone_name = values["timezone"]
        if zone_name is None:  # absent; an empty value is no zone (a 400)
            zone_name = settings.budget_timezone
        zone = report_zone(zone_name)
        start = _bound(values["from"], zone, "from")
        end = _bound(values["to"], zone, "to")
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    tenant_id, key_id = values.get("tenant_id"), values["key_id"]
    if tenant_id is not None and not TENANT_ID.fullmatch(tenant_id):
        raise _invalid("tenant_id: a tenant id is a lowercase slug (a-z, 0-9, -)")
    if key_id is not None and not keys.looks_like_key_id(key_id):
        raise _invalid("key_id: a key id is the 16 characters after tk_")
    return _Query(_group_by(http), start, end, tenant_id, key_id, zone_name)


def _single(http: web.Request, name: str) -> str | None:
    given = http.query.getall(name, [])
    if len(given) > 1:
        raise _invalid(f"{name}: given {len(given)} times; give it once")
    return given[0] if given else None


def _bound(text: str | None, zone: Any, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        instant = parse_bound(text, zone)
    except BadBound as exc:
        raise _invalid(f"{name}: {exc}") from None
    # Beyond what a datetime holds: `from` the beginning, or `to` no end (or nothing).
    if instant == EARLIEST:
        return None if name == "from" else instant
    return None if instant == LATEST and name == "to" else instant


def _group_by(http: web.Request) -> tuple[Dimension, ...]:
    dims: list[Dimension] = []
    for value in http.query.getall("group_by", []):
        for part in value.split(","):
            try:
                dims.append(Dimension(part))
            except ValueError:
                raise _invalid(f"group_by: {part[:40]!r} is not one of "
                               f"{', '.join(d.value for d in Dimension)}") from None
    return tuple(dict.fromkeys(dims))


def _invalid(message: str) -> AdminError:
    return AdminError(400, "invalid_request", message)
