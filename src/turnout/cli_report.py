"""`turnout report spend`: the chargeback report from the command line, as a table, CSV or
JSON.

    turnout report spend -c turnout.yaml --by tenant,model --from 2026-12-01 --to 2027-01-01
    turnout report spend -c turnout.yaml --by key,day --tenant acme --format csv > acme.csv
    turnout report spend --gateway http://127.0.0.1:4000 --by tenant --format json

Like `turnout tenants`, it is one admin API request (`GET /admin/v1/spend`): to a running
gateway with `--gateway URL` and $TURNOUT_ADMIN_KEY, else straight to the config's
tenancy database. The range is half-open: `--to` is the first day (or instant) not
counted. The table and CSV are written from the API's JSON answer, so all three agree.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson

from turnout.cli_tenancy import UnusableConfig, call_admin

_MEASURES = ("requests", "attempts", "input_tokens", "output_tokens", "cached_input_tokens",
             "cache_write_tokens", "reasoning_tokens", "cost_micro_usd", "cost_usd",
             "estimated_cost_micro_usd", "estimated_cost_usd", "estimated_share")
_TABLE = (("requests", "requests"), ("attempts", "attempts"), ("input", "input_tokens"),
          ("output", "output_tokens"), ("cached in", "cached_input_tokens"),
          ("cache write", "cache_write_tokens"), ("reasoning", "reasoning_tokens"),
          ("cost (USD)", "cost_usd"))
_NAMED = ("tenant", "key")
"""Dimensions whose rows carry display names."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `report spend` on the main parser's subcommands."""
    report = commands.add_parser("report", help="chargeback reports")
    reports = report.add_subparsers(dest="report", required=True, help="the report")
    spend = reports.add_parser(
        "spend", help="spend by tenant, key, model, alias, provider, deployment, day, month "
                      "or conversation over a date range")
    spend.add_argument("--by", default="", metavar="DIMENSIONS",
                       help="comma-separated: tenant, key, model, alias, provider, "
                            "deployment, day, month, conversation (default: the total only)")
    spend.add_argument("--from", dest="start", metavar="WHEN",
                       help="first day counted (2026-12-01: its midnight in the report's "
                            "time zone) or RFC 3339 time (2026-12-01T08:00:00Z)")
    spend.add_argument("--to", dest="end", metavar="WHEN",
                       help="first day (or time) NOT counted: December is --from 2026-12-01 "
                            "--to 2027-01-01")
    spend.add_argument("--tenant", help="only this tenant's spend")
    spend.add_argument("--key", help="only this virtual key's spend (its id)")
    spend.add_argument("--timezone", metavar="ZONE",
                       help="IANA zone of the days and months (default: "
                            "tenancy.budget_timezone)")
    spend.add_argument("--format", choices=("table", "csv", "json"), default="table",
                       help="table (default), csv (a header row; the TOTAL row last) or "
                            "json (the admin API's answer: integer micro-USD and exact "
                            "decimal USD strings)")
    spend.set_defaults(config=None)
    spend.add_argument("--config", "-c", dest="config_option", metavar="CONFIG",
                       help="YAML config file (default: $TURNOUT_CONFIG)")
    spend.add_argument("--gateway", metavar="URL",
                       help="a running gateway (admin key from $TURNOUT_ADMIN_KEY); "
                            "default: the config's tenancy database directly")


def request_path(args: argparse.Namespace) -> str:
    """`/spend?...` for the parsed command."""
    query: list[tuple[str, str]] = []
    if args.by:
        query.append(("group_by", args.by.replace(" ", "")))
    for name, value in (("from", args.start), ("to", args.end), ("tenant_id", args.tenant),
                        ("key_id", args.key), ("timezone", args.timezone)):
        if value is not None:
            query.append((name, value))
    return f"/spend?{urlencode(query)}" if query else "/spend"


def run(args: argparse.Namespace, config: str | None) -> int:
    """Ask for the report and print it; 0 on success, 1 if refused, 2 if it cannot ask."""
    problem = _backwards(args)
    if problem:
        print(f"turnout report spend: {problem}", file=sys.stderr)
        return 2
    try:
        status, answer = call_admin(args.gateway, config, ("GET", request_path(args), None))
    except UnusableConfig as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if status != 200:
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        print(f"turnout report spend: {error.get('message', answer)} ({status})",
              file=sys.stderr)
        return 1
    if args.format == "json":
        print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    elif args.format == "csv":
        sys.stdout.write(to_csv(answer))
    else:
        print(to_table(answer))
    return 0


def _backwards(args: argparse.Namespace) -> str | None:
    """Why the range is empty by construction (`--to` not after `--from`), if it is."""
    from turnout.spend.report_periods import BadBound, parse_bound

    if args.start is None or args.end is None or (len(args.start) == 10) != (
            len(args.end) == 10):  # a date and a time compare only in a known zone
        return None
    try:
        start, end = (parse_bound(v, ZoneInfo("UTC")) for v in (args.start, args.end))
    except BadBound:
        return None  # the gateway explains it
    if end <= start:
        return (f"--to {args.end} is not after --from {args.start}: the range would be "
                "empty (--to is the first day not counted)")
    return None


def _columns(answer: dict[str, Any]) -> list[str]:
    """The group columns: each dimension, a tenant's or key's name right after its id."""
    columns: list[str] = []
    for dim in answer["group_by"]:
        columns += [dim, f"{dim}_name"] if dim in _NAMED else [dim]
    return columns


def _group_cells(row: dict[str, Any], dims: list[str], none: str = "") -> list[str]:
    cells: list[str] = []
    for dim in dims:
        value = row["group"][dim]
        cells.append(none if value is None else value)
        if dim in _NAMED:
            cells.append(row["names"].get(dim, ""))
    return cells


def to_csv(answer: dict[str, Any]) -> str:
    """A header row, one row per group, then the TOTAL row (its first column says so)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    dims: list[str] = answer["group_by"]
    writer.writerow([*_columns(answer), *_MEASURES])
    for row in answer["data"]:
        writer.writerow([*_group_cells(row, dims), *(row[m] for m in _MEASURES)])
    label = ["TOTAL", *([""] * (len(_columns(answer)) - 1))] if dims else []
    writer.writerow([*label, *(answer["total"][m] for m in _MEASURES)])
    return out.getvalue()


def to_table(answer: dict[str, Any]) -> str:
    """Aligned columns, a TOTAL line, and what the range and the estimate mean."""
    dims: list[str] = answer["group_by"]
    header = [*(c.replace("_", " ") for c in _columns(answer)),
              *(title for title, _ in _TABLE), "estimated"]
    body = [[*_group_cells(row, dims, "(none)"), *_figures(row)] for row in answer["data"]]
    total = [*(["TOTAL"] + [""] * (len(_columns(answer)) - 1) if dims else []),
             *_figures(answer["total"])]
    if not dims:
        header = header[len(_columns(answer)):]
    widths = [max(len(str(line[i])) for line in (header, *body, total))
              for i in range(len(header))]
    text_columns = len(_columns(answer)) if dims else 0

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < text_columns else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    zone = answer["timezone"]
    start, end = _local(answer["start"], zone), _local(answer["end"], zone)
    span = (f"from {start or 'the beginning'} " if start or not end else "") + (
        f"until {end} (not counted)" if end else "to now")
    lines = [f"Spend {span}, days in {zone}, in {answer['currency']}", "", line(header),
             rule, *map(line, body)]
    if body:
        lines.append(rule)
    lines.append(line(total))
    if answer["total"]["estimated_cost_micro_usd"]:
        lines += ["", "estimated: the share of the cost costed from offline token counts "
                      "(the provider reported no usage)"]
    return "\n".join(lines)


def _local(instant: str | None, zone: str) -> str | None:
    """An instant of the answer as the zone's wall-clock time (`2026-12-01 00:00`)."""
    if instant is None:
        return None
    local = datetime.fromisoformat(instant).astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%d %H:%M" + (":%S" if local.second else ""))


def _figures(row: dict[str, Any]) -> list[str]:
    cells = [f"{row[field]:,}" if field != "cost_usd" else row[field] for _, field in _TABLE]
    share = row["estimated_share"]
    cells.append(f"{share:.1%}" if row["estimated_cost_micro_usd"] else "")
    return cells
