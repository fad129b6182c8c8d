"""Helpers of the spend tests: records to write, rows read back, a PostgreSQL schema per
test on 127.0.0.1:5432 (database `test`; skipped when unreachable, except under CI's
TURNOUT_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from turnout.spend.records import SpendRecord
from turnout.tenancy.migrate import upgrade
from turnout.tenancy.sql import SqlTenantStore
from turnout.tenancy.tables import spend

POSTGRES_URL = os.environ.get("TURNOUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def record(attempt_id: str, **fields: Any) -> SpendRecord:
    """A record with plausible defaults."""
    values: dict[str, Any] = dict(
        attempt_id=attempt_id, request_id=f"req-{attempt_id}", tenant_id="acme",
        key_id="k1", alias="chat", provider="openai", deployment="openai/gpt-4o-mini",
        model="gpt-4o-mini", started_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        latency_ms=120, outcome="ok", status=200, stream=False, input_tokens=10,
        output_tokens=20, cost_micro_usd=30)
    values.update(fields)
    return SpendRecord(**values)


async def rows(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """Every stored record by attempt id."""
    async with engine.connect() as conn:
        result = await conn.execute(select(spend))
        return {row.attempt_id: dict(row._mapping) for row in result}


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(spend))).scalar_one())


async def postgres_engine() -> AsyncIterator[AsyncEngine]:
    schema = f"turnout_test_{secrets.token_hex(6)}"
    admin = create_async_engine(SqlTenantStore.driver_url(POSTGRES_URL))
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:
        await admin.dispose()
        if os.environ.get("TURNOUT_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    engine = create_async_engine(SqlTenantStore.driver_url(POSTGRES_URL),
                                 connect_args={"server_settings": {"search_path": schema}})
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
