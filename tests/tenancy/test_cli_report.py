"""`turnout report spend` as a table, CSV and JSON, straight on the config's database and
through a real running gateway with the admin key: the three formats carry the same
figures, and the CSV's last row is the total."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml
from sqlalchemy.ext.asyncio import create_async_engine

from turnout.cli import main
from turnout.tenancy.migrate import upgrade
from turnout.tenancy.sql import SqlTenantStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spend"))
from _ledger_rows import attempt, insert_names, insert_rows

ADMIN_KEY = "report-admin-" + "r" * 40
ACME_KEY = "acmekeyzzzzzzzz2"


@pytest.fixture
async def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Path]:
    monkeypatch.setenv("REPORT_ADMIN_KEY", ADMIN_KEY)
    path = tmp_path / "agency.yaml"
    path.write_text(yaml.safe_dump({
        "local": False,
        "tenancy": {"database": "sqlite:///agency.db", "admin_key": {"env": "REPORT_ADMIN_KEY"},
                    "budget_timezone": "Europe/Paris"}}))
    engine = create_async_engine(SqlTenantStore.driver_url(f"sqlite:///{tmp_path / 'agency.db'}"))
    await upgrade(engine)
    await insert_names(engine, {"acme": "Acme Corp", "beta": "Beta"},
                       {ACME_KEY: ("acme", "support-bot")})
    dec = datetime(2026, 12, 3, 10, tzinfo=UTC)
    await insert_rows(engine, [
        attempt(dec, request_id="r1", key_id=ACME_KEY, cost_micro_usd=1_234_567,
                input_tokens=1_500),
        attempt(dec, request_id="r1", key_id=ACME_KEY, model="claude-haiku-4-5",
                cost_micro_usd=2_500, estimated=True),
        attempt(dec, tenant_id="beta", key_id=None, cost_micro_usd=40),
        attempt(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), key_id=ACME_KEY,
                cost_micro_usd=5),  # December in Paris
        attempt(datetime(2027, 1, 1, 0, 0, tzinfo=UTC), key_id=ACME_KEY,
                cost_micro_usd=1_000_000)])  # January in Paris
    await engine.dispose()
    yield path


async def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    def run() -> tuple[int, str, str]:
        code = main(["report", "spend", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return await asyncio.to_thread(run)  # the CLI runs its own event loop


DECEMBER = ("--from", "2026-12-01", "--to", "2027-01-01")


async def check_formats(capsys: pytest.CaptureFixture[str], *where: str) -> None:
    code, out, err = await report(capsys, *where, "--by", "tenant,model", *DECEMBER,
                                  "--format", "json")
    assert code == 0, err
    answer = orjson.loads(out)
    assert answer["timezone"] == "Europe/Paris" and answer["start"] == "2026-11-30T23:00:00Z"
    assert answer["total"]["cost_micro_usd"] == 1_237_112
    assert answer["total"]["cost_usd"] == "1.237112"
    assert (answer["total"]["requests"], answer["total"]["attempts"]) == (3, 4)

    code, out, _ = await report(capsys, *where, "--by", "tenant,model", *DECEMBER,
                                "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["tenant"], r["tenant_name"], r["model"]) for r in rows] == [
        ("acme", "Acme Corp", "claude-haiku-4-5"), ("acme", "Acme Corp", "gpt-4o-mini"),
        ("beta", "Beta", "gpt-4o-mini"), ("TOTAL", "", "")]
    assert rows[1]["cost_micro_usd"] == "1234572" and rows[1]["cost_usd"] == "1.234572"
    assert rows[0]["estimated_share"] == "1.0" and rows[-1]["cost_usd"] == "1.237112"
    assert sum(int(r["cost_micro_usd"]) for r in rows[:-1]) == int(rows[-1]["cost_micro_usd"])

    code, out, _ = await report(capsys, *where, "--by", "tenant,key", *DECEMBER)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == ("Spend from 2026-12-01 00:00 until 2027-01-01 00:00 (not counted), "
                        "days in Europe/Paris, in USD")
    acme = next(line for line in lines if line.startswith("acme"))
    assert "Acme Corp" in acme and "support-bot" in acme and "1.237072" in acme
    assert "1,700" in acme and "0.2%" in acme  # thousands separated; the estimated share
    beta = next(line for line in lines if line.startswith("beta"))
    assert "(none)" in beta  # no key
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total.split()[1:3] == ["3", "4"] and "1.237112" in total
    assert "estimated:" in lines[-1]

    code, out, _ = await report(capsys, *where, "--by", "day", "--tenant", "acme", "--key",
                                ACME_KEY, "--timezone", "UTC", "--format", "json")
    assert [(r["group"]["day"], r["cost_micro_usd"]) for r in orjson.loads(out)["data"]] == [
        ("2026-11-30", 5), ("2026-12-03", 1_237_067), ("2027-01-01", 1_000_000)]


async def test_the_report_reads_the_database(config: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    await check_formats(capsys, "-c", str(config))


async def test_the_report_asks_a_running_gateway(config: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web

    from turnout.config import compile_config, load_config
    from turnout.gateway.app import create_gateway

    runtime = compile_config(load_config(str(config), os.environ), os.environ)
    runner = web.AppRunner(create_gateway(runtime), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        monkeypatch.delenv("TURNOUT_ADMIN_KEY", raising=False)
        code, _, err = await report(capsys, "--gateway", url)
        assert code == 2 and "TURNOUT_ADMIN_KEY" in err
        monkeypatch.setenv("TURNOUT_ADMIN_KEY", "wrong-" + "x" * 40)
        code, out, err = await report(capsys, "--gateway", url)
        assert code == 1 and out == "" and "(401)" in err
        monkeypatch.setenv("TURNOUT_ADMIN_KEY", ADMIN_KEY)
        await check_formats(capsys, "--gateway", url)
    finally:
        await runner.cleanup()


async def test_mistakes_are_explained(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = ("-c", str(config))
    code, out, err = await report(capsys, *c, "--from", "2026-12-31", "--to", "2026-12-01")
    assert code == 2 and out == "" and "--to is the first day not counted" in err
    code, _, err = await report(capsys, *c, "--by", "tenant,week")
    assert code == 1 and "'week' is not one of" in err and "(400)" in err
    code, _, err = await report(capsys, *c, "--from", "2026-12-01T00:00:00")
    assert code == 1 and "RFC 3339" in err
    code, _, err = await report(capsys, *c, "--timezone", "Paris")
    assert code == 1 and "unknown time zone" in err
    code, _, err = await report(capsys, *c, "--tenant", "../beta")
    assert code == 1 and "tenant_id" in err
    plain = config.parent / "plain.yaml"
    plain.write_text("local: false\n")
    code, _, err = await report(capsys, "-c", str(plain))
    assert code == 2 and "has no tenancy section" in err
