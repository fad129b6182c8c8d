"""Spend ledger rows written straight into `turnout_spend` (as the write path will)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.tenancy.tables import spend, tenants, virtual_keys

_ids = itertools.count()


def attempt(started_at: datetime, **fields: Any) -> dict[str, Any]:
    """One attempt's row: defaults for every column, `fields` replacing them."""
    n = next(_ids)
    row: dict[str, Any] = {
        "attempt_id": f"att-{n}", "request_id": f"req-{n}", "tenant_id": "acme",
        "key_id": "acmekey000000001", "alias": "chat", "provider": "openai",
        "deployment": "openai/gpt-4o-mini", "model": "gpt-4o-mini",
        "started_at": started_at.astimezone(UTC), "latency_ms": 120, "outcome": "ok",
        "status": 200, "stream": False, "input_tokens": 100, "output_tokens": 20,
        "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
        "cost_micro_usd": 1_000, "estimated": False, "conversation_id": None}
    row.update(fields)
    return row


async def insert_rows(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(spend), rows)


async def insert_names(engine: AsyncEngine, tenant_names: dict[str, str],
                       key_names: dict[str, tuple[str, str]]) -> None:
    """Tenants (id: name) and virtual keys (id: (tenant id, name)) for the reports' names."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(tenants), [{"id": t, "name": n, "created_at": now}
                                             for t, n in tenant_names.items()])
        await conn.execute(insert(virtual_keys), [
            {"id": k, "tenant_id": t, "name": n, "digest": b"\0" * 32, "created_at": now}
            for k, (t, n) in key_names.items()])
