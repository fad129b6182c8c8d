"""The ledger stage in-process: `turnout.Client` records spend for a tenant's key and for
the configuration's owner alike, on SQLite by default, through the same stages as the
gateway; a stream the caller stops reading is recorded as cancelled, its usage estimated."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.config import compile_config, validate_config
from turnout.config.runtime import RuntimeConfig
from turnout.sim.server import RunningSimulator, start_simulator
from turnout.tenancy.keys import mint
from turnout.tenancy.records import KeyRecord
from turnout.tenancy.sql import SqlTenantStore


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator("anthropic_messages", "anthropic-sim")
    yield running
    await running.close()


def runtime(sim: RunningSimulator, db: Path) -> RuntimeConfig:
    return compile_config(validate_config({
        "local": False,
        "providers": {"an": {"kind": "anthropic", "base_url": sim.url,
                             "api_key": {"env": "SIM_KEY"}}},
        "routes": {"chat": {"targets": [{"provider": "an", "model": "claude-haiku-4-5"}]}},
        "tenancy": {"database": f"sqlite:///{db}"},
    }), {"SIM_KEY": "k"})


async def tenant_key(db: Path) -> str:
    store = await SqlTenantStore.open(f"sqlite:///{db}")
    await store.create_tenant("acme", "Acme")
    key = mint()
    await store.add_key(KeyRecord(key.key_id, "acme", "lib", key.digest, datetime.now(UTC)))
    await store.close()
    return key.token


def rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM turnout_spend ORDER BY started_at")]


async def test_the_in_process_client_records_spend_for_a_tenant_and_for_the_owner(
        sim: RunningSimulator, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    token = await tenant_key(db)
    messages = [{"role": "user", "content": "hello there"}]
    async with turnout.Client(runtime(sim, db), api_key=token) as client:
        answer = await client.chat(model="chat", messages=messages, max_tokens=32)
    async with turnout.Client(runtime(sim, db)) as owner:
        async for _ in owner.stream(model="chat", messages=messages, max_tokens=32):
            pass
    tenant, own = rows(db)
    assert (tenant["tenant_id"], tenant["outcome"], tenant["stream"]) == ("acme", "ok", 0)
    assert (tenant["input_tokens"], tenant["output_tokens"]) == (
        answer.usage.input_tokens, answer.usage.output_tokens)
    assert (own["tenant_id"], own["outcome"], own["stream"], own["estimated"]) == (
        None, "ok", 1, 0)
    assert (tmp_path / "t.spend-journal").is_dir()
    assert list((tmp_path / "t.spend-journal").iterdir()) == []  # closed clean


async def test_a_stream_left_early_is_cancelled_and_estimated(
        sim: RunningSimulator, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with turnout.Client(runtime(sim, db)) as client:
        events = client.stream(model="chat", messages=[
            {"role": "user", "content": "a long story " * 50}], max_tokens=200)
        async for _ in events:
            break
        await events.aclose()  # type: ignore[attr-defined]
    (row,) = rows(db)
    assert (row["outcome"], row["status"], row["estimated"]) == ("cancelled", 499, 1)
    assert row["input_tokens"] > 0
