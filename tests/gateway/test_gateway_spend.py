"""The spend ledger through the gateway: one row per upstream attempt, whose usage is the
simulator's own to the token, for OpenAI and Anthropic clients, stream and non-stream, on
every upstream dialect; conversation ids; static-key traffic; failed attempts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from _gw_harness import ROUTE, Gateway, compile_data, serve
from _gw_tenancy import ADMIN_KEY, Admin, tenancy_data
from sqlalchemy import select

from turnout.core.response import Usage
from turnout.dialects.registry import get_dialect
from turnout.pricing.cost import cost
from turnout.sim.faults import Fault
from turnout.sim.responder import respond
from turnout.sim.server import RunningSimulator
from turnout.tenancy.tables import spend

TAG = re.compile(rb"spend-check-\d+")
STATIC_KEY = "Zq8vN2xLp4Rt7Wk1Hs9Df3Gj6Bm0Yc5Ue"


@pytest.fixture
async def gw(sims: dict[str, RunningSimulator], tmp_path: Path) -> AsyncIterator[Gateway]:
    data = tenancy_data(sims, tmp_path / "t.db")
    data["server"] = {"gateway_keys": [{"env": "STATIC_KEY"}]}
    async with AsyncExitStack() as stack:
        yield await serve(compile_data(data, {"ADMIN_KEY": ADMIN_KEY,
                                              "STATIC_KEY": STATIC_KEY}), stack)


async def ledger(gw: Gateway) -> list[dict[str, Any]]:
    """Every row, once what waits has been written."""
    (writer,) = gw.engine.resources.all_spend_ledgers()
    assert await writer.flush()
    assert gw.runtime.tenancy is not None
    engine = await gw.engine.resources.sql_engine(gw.runtime.tenancy.database_url)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(spend))]


async def call(gw: Gateway, key: str, client: str, route: str, n: int, stream: bool,
               headers: dict[str, str] | None = None, **extra: Any) -> tuple[int, bytes]:
    body: dict[str, Any] = {"model": route, "max_tokens": 64, "stream": stream,
                            "messages": [{"role": "user",
                                          "content": f"spend-check-{n} counts words"}]}
    body.update(extra)
    path = "/v1/chat/completions" if client == "openai" else "/v1/messages"
    async with gw.http.post(gw.url + path, data=orjson.dumps(body), headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json",
            "x-request-id": f"spend-check-{n}", **(headers or {})}) as response:
        return response.status, await response.read()


def sim_usage(sims: dict[str, RunningSimulator]) -> dict[str, tuple[str, Usage]]:
    """What each simulator itself answered to each tagged request, by tag."""
    found: dict[str, tuple[str, Usage]] = {}
    for dialect_name, sim in sims.items():
        dialect = get_dialect(dialect_name)
        for recorded in sim.requests:
            tag = TAG.search(orjson.dumps(recorded.body))
            if tag is None or recorded.fault is not None:
                continue
            url_model = stream = None
            if dialect_name == "gemini":
                target = recorded.path.rsplit("/", 1)[1]
                url_model, _, method = target.rpartition(":")
                stream = method == "streamGenerateContent"
            request = dialect.decode_request(recorded.body, model=url_model, stream=stream)
            answer = respond(request, sim_name=sim.name)
            found[tag.group().decode()] = (dialect_name, answer.usage)
    return found


async def test_the_ledger_holds_each_attempt_with_the_simulators_usage_to_the_token(
        gw: Gateway, sims: dict[str, RunningSimulator]) -> None:
    admin = Admin(gw)
    await admin.tenant("acme")
    key = await admin.key("acme")
    n = 0
    for client in ("openai", "anthropic"):
        for route in ROUTE.values():
            for stream in (False, True):
                n += 1
                status, body = await call(gw, key, client, route, n, stream)
                assert status == 200, body
    rows = {r["request_id"]: r for r in await ledger(gw)}
    seen = sim_usage(sims)
    assert sorted(rows) == sorted(seen) and len(rows) == n == 12
    deployments = gw.runtime.deployments
    for tag, (_, usage) in seen.items():
        row = rows[tag]
        assert (row["input_tokens"], row["output_tokens"]) == (
            usage.input_tokens, usage.output_tokens), (tag, row)
        assert (row["outcome"], row["status"], row["estimated"]) == ("ok", 200, False)
        assert (row["tenant_id"], row["alias"]) == ("acme", row["alias"])
        price = deployments[row["deployment"]].info.price
        expected = 0 if price is None else cost(usage, price).micro_usd()
        assert row["cost_micro_usd"] == expected
    assert sum(r["stream"] for r in rows.values()) == 6
    assert {r["alias"] for r in rows.values()} == set(ROUTE.values())
    # The chargeback report of this traffic, read back through the admin API by the
    # tenant's own key, adds up to the simulators' own usage.
    status, report = await admin.call("GET", "/tenants/acme/spend?group_by=model", key=key)
    assert status == 200, report
    total = report["total"]
    assert (total["requests"], total["attempts"]) == (12, 12)
    assert total["input_tokens"] == sum(u.input_tokens for _, u in seen.values())
    assert total["output_tokens"] == sum(u.output_tokens for _, u in seen.values())
    assert total["cost_micro_usd"] == sum(r["cost_micro_usd"] for r in rows.values())
    assert sum(g["attempts"] for g in report["data"]) == 12


async def test_conversation_ids_come_from_the_header_or_the_metadata(gw: Gateway) -> None:
    admin = Admin(gw)
    await admin.tenant("acme")
    key = await admin.key("acme")
    await call(gw, key, "openai", "oa", 1, False, {"x-turnout-conversation-id": "c" * 300})
    await call(gw, key, "openai", "oa", 2, True, metadata={"conversation_id": "meta-7"})
    await call(gw, key, "openai", "oa", 3, False)
    rows = {r["request_id"]: r["conversation_id"] for r in await ledger(gw)}
    assert rows == {"spend-check-1": "c" * 200, "spend-check-2": "meta-7",
                    "spend-check-3": None}


async def test_static_key_traffic_is_recorded_without_a_tenant(gw: Gateway) -> None:
    status, _ = await call(gw, STATIC_KEY, "anthropic", "an", 1, True)
    assert status == 200
    (row,) = await ledger(gw)
    assert (row["tenant_id"], row["key_id"], row["outcome"]) == (None, None, "ok")


async def test_a_failed_attempt_and_its_retry_are_two_rows(
        gw: Gateway, sims: dict[str, RunningSimulator]) -> None:
    admin = Admin(gw)
    await admin.tenant("acme")
    key = await admin.key("acme")
    sims["openai_chat"].faults.add(Fault(kind="status", status=503, times=1))
    status, _ = await call(gw, key, "openai", "oa", 1, False)
    assert status == 200
    rows = sorted(await ledger(gw), key=lambda r: r["attempt_id"])
    assert [(r["outcome"], r["status"]) for r in rows] == [("error", 503), ("ok", 200)]
    assert rows[0]["input_tokens"] == rows[0]["cost_micro_usd"] == 0
    assert rows[0]["attempt_id"].rsplit(".", 1)[0] == rows[1]["attempt_id"].rsplit(".", 1)[0]


async def test_an_upstream_error_with_no_answer_is_one_error_row(
        gw: Gateway, sims: dict[str, RunningSimulator]) -> None:
    admin = Admin(gw)
    await admin.tenant("acme")
    key = await admin.key("acme")
    sims["anthropic_messages"].faults.add(Fault(kind="status", status=400, times=1))
    status, _ = await call(gw, key, "anthropic", "an", 1, False)
    assert status == 400
    (row,) = await ledger(gw)
    assert (row["outcome"], row["status"], row["output_tokens"]) == ("error", 400, 0)


async def test_the_metrics_say_what_was_written_and_what_waits(gw: Gateway) -> None:
    admin = Admin(gw)
    await admin.tenant("acme")
    key = await admin.key("acme")
    await call(gw, key, "openai", "oa", 1, False)
    await ledger(gw)
    async with gw.http.get(gw.url + "/metrics",
                           headers={"Authorization": f"Bearer {STATIC_KEY}"}) as response:
        text = await response.text()
    assert "turnout_spend_records_written_total 1.0" in text
    assert "turnout_spend_records_pending 0.0" in text
    assert "turnout_spend_records_spilled 0.0" in text
    assert "turnout_spend_write_failures_total 0.0" in text
    assert "turnout_spend_degraded 0.0" in text


class _DownStore:
    async def write_many(self, records: object) -> None:
        raise ConnectionRefusedError("database down")


async def test_while_the_database_fails_records_wait_and_readyz_says_degraded(
        gw: Gateway) -> None:
    admin = Admin(gw)
    await admin.tenant("acme")
    key = await admin.key("acme")
    (writer,) = gw.engine.resources.all_spend_ledgers()
    store, writer._store = writer._store, _DownStore()  # type: ignore[assignment]
    assert (await call(gw, key, "openai", "oa", 1, True))[0] == 200
    assert not await writer.flush()
    assert gw.engine.readiness()["spend_ledger"].startswith("degraded")
    async with gw.http.get(gw.url + "/readyz") as response:
        assert response.status == 200  # it keeps serving
    writer._store = store
    rows = await ledger(gw)
    assert [r["request_id"] for r in rows] == ["spend-check-1"]
    assert gw.engine.readiness()["spend_ledger"] == "ready"
