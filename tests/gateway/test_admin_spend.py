"""The admin API's spend reports, on SQLite and the real PostgreSQL: the admin key reads
every tenant's, a tenant's own key its own tenant's only (another tenant's is a 404, its
key id under the tenant's path finds nothing), costs come as integer micro-dollars and
exact decimal strings, and every malformed parameter is a 400 in the Error shape."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from _gw_admin import ADMIN_KEY, postgres_database, serve_admin
from _gw_harness import Gateway
from sqlalchemy.ext.asyncio import create_async_engine

from turnout.tenancy.sql import SqlTenantStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spend"))
from _ledger_rows import attempt, insert_rows


@dataclass
class Spend:
    gw: Gateway
    acme_key: dict[str, Any]
    beta_key: dict[str, Any]

    async def get(self, path: str, token: str | None = ADMIN_KEY,
                  params: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.gw.http.get(f"{self.gw.url}/admin/v1{path}", params=params,
                                    headers=headers) as reply:
            assert reply.status < 500 and reply.content_type == "application/json"
            return reply.status, orjson.loads(await reply.read())


@pytest.fixture(params=["sqlite", "postgresql"])
async def spend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Spend]:
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'tenancy.db'}"
        else:
            url = await stack.enter_async_context(postgres_database())
        gw = await serve_admin(url, stack)
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
        made = {}
        for tenant, name in (("acme", "Acme Corp"), ("beta", "Beta")):
            async with gw.http.post(f"{gw.url}/admin/v1/tenants", headers=auth,
                                    json={"id": tenant, "name": name}) as reply:
                assert reply.status == 201
            async with gw.http.post(f"{gw.url}/admin/v1/tenants/{tenant}/keys", headers=auth,
                                    json={"name": f"{tenant}-bot"}) as reply:
                made[tenant] = await reply.json()
        engine = create_async_engine(SqlTenantStore.driver_url(url))
        dec = datetime(2026, 12, 1, 12, tzinfo=UTC)
        await insert_rows(engine, [
            attempt(dec, key_id=made["acme"]["id"], request_id="a1", cost_micro_usd=1_234_567),
            attempt(dec, key_id=made["acme"]["id"], request_id="a1", cost_micro_usd=0),
            attempt(dec, key_id=made["acme"]["id"], model="claude-haiku-4-5",
                    cost_micro_usd=500, estimated=True),
            attempt(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), key_id=made["acme"]["id"],
                    cost_micro_usd=7),  # 2026-12-01 in Paris, November in UTC
            attempt(dec, tenant_id="beta", key_id=made["beta"]["id"], cost_micro_usd=99),
            attempt(dec, tenant_id=None, key_id=None, cost_micro_usd=1)])
        await engine.dispose()
        yield Spend(gw, made["acme"], made["beta"])


async def test_the_admin_reads_every_tenants_spend(spend: Spend) -> None:
    status, report = await spend.get("/spend", params=[
        ("group_by", "tenant,key"), ("group_by", "tenant"), ("from", "2026-12-01"),
        ("to", "2027-01-01")])
    assert status == 200, report
    assert report["group_by"] == ["tenant", "key"] and report["currency"] == "USD"
    assert report["timezone"] == "UTC"
    assert (report["start"], report["end"]) == ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
    rows = {(r["group"]["tenant"], r["group"]["key"]): r for r in report["data"]}
    acme = rows[("acme", spend.acme_key["id"])]
    assert acme["names"] == {"tenant": "Acme Corp", "key": "acme-bot"}
    assert (acme["requests"], acme["attempts"]) == (2, 3)
    assert acme["cost_micro_usd"] == 1_235_067 and acme["cost_usd"] == "1.235067"
    assert acme["estimated_cost_usd"] == "0.000500" and acme["estimated_attempts"] == 1
    assert acme["estimated_share"] == pytest.approx(500 / 1_235_067, abs=1e-6)
    assert rows[(None, None)]["names"] == {} and rows[(None, None)]["cost_usd"] == "0.000001"
    assert list(rows)[-1] == (None, None)  # nulls last
    assert report["total"]["cost_micro_usd"] == 1_235_067 + 99 + 1
    assert report["total"]["requests"] == 4
    status, only_beta = await spend.get("/spend", params={"tenant_id": "beta"})
    assert only_beta["total"]["cost_micro_usd"] == 99 and only_beta["data"] == []


async def test_days_follow_the_zone_asked_or_the_budgets(spend: Spend) -> None:
    _, utc = await spend.get("/spend", params={"group_by": "day", "tenant_id": "acme"})
    assert [r["group"]["day"] for r in utc["data"]] == ["2026-11-30", "2026-12-01"]
    _, paris = await spend.get("/spend", params={"group_by": "day,month", "tenant_id": "acme",
                                                 "timezone": "Europe/Paris",
                                                 "from": "2026-12-01"})
    assert [(r["group"]["day"], r["group"]["month"]) for r in paris["data"]] == [
        ("2026-12-01", "2026-12")]
    assert paris["data"][0]["attempts"] == 4 and paris["start"] == "2026-11-30T23:00:00Z"


async def test_a_tenants_own_key_reads_its_own_spend_only(spend: Spend) -> None:
    own, other = spend.acme_key["key"], spend.beta_key["key"]
    status, report = await spend.get("/tenants/acme/spend", own, {"group_by": "tenant"})
    assert status == 200
    assert [r["group"]["tenant"] for r in report["data"]] == ["acme"]
    assert report["total"]["cost_micro_usd"] == 1_235_074
    text = orjson.dumps(report).decode()
    assert "beta" not in text and spend.beta_key["id"] not in text
    assert (await spend.get("/tenants/beta/spend", own))[0] == 404
    assert (await spend.get("/tenants/acme/spend", other))[0] == 404
    assert (await spend.get("/spend", own))[0] == 403
    assert (await spend.get("/tenants/acme/spend", None))[0] == 401
    # beta's key id under acme's path finds nothing of beta's.
    status, crossed = await spend.get("/tenants/acme/spend", own,
                                      {"key_id": spend.beta_key["id"], "group_by": "key"})
    assert status == 200 and crossed["data"] == [] and crossed["total"]["attempts"] == 0
    # No tenant filter on the tenant's path: it is the path's.
    status, error = await spend.get("/tenants/acme/spend", own, {"tenant_id": "beta"})
    assert status == 400 and "tenant_id" in error["error"]["message"]
    status, admin = await spend.get("/tenants/beta/spend", params={"group_by": "key"})
    assert status == 200 and admin["total"]["cost_micro_usd"] == 99
    assert admin["data"][0]["names"] == {"key": "beta-bot"}


@pytest.mark.parametrize("params", [
    {"group_by": "week"}, {"group_by": ""}, {"group_by": "tenant,"},
    {"from": "2026-12-32"}, {"from": "yesterday"}, {"to": "2026-12-01T00:00:00"},
    {"to": ""}, {"timezone": "Mars/Olympus"}, {"timezone": ""},
    {"timezone": "../../etc/passwd"}, {"tenant_id": "' OR 1=1 --"}, {"tenant_id": "ACME"},
    {"key_id": "short"}, {"key_id": "\x00" * 16}, {"format": "csv"}, {"limit": "10"},
    [("from", "2026-12-01"), ("from", "2026-12-02")]])
async def test_malformed_parameters_are_a_400(spend: Spend, params: Any) -> None:
    status, error = await spend.get("/spend", params=params)
    assert status == 400, error
    assert set(error) == {"error"} and error["error"]["type"] == "invalid_request"
    assert error["error"]["message"]


async def test_edge_ranges_are_empty_or_unbounded(spend: Spend) -> None:
    _, backwards = await spend.get("/spend", params={"from": "2027-01-01", "to": "2026-01-01"})
    assert backwards["total"]["attempts"] == 0
    _, everything = await spend.get("/spend", params={"from": "0001-01-01T00:00:00+23:59",
                                                      "to": "9999-12-31T23:59:59-23:59"})
    assert everything["total"]["attempts"] == 6
    assert (everything["start"], everything["end"]) == (None, None)
