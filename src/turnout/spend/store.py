"""Where spend records end up: the `turnout_spend` table, written in batches.

Every write is idempotent per attempt: `INSERT ... ON CONFLICT (attempt_id) DO NOTHING`
(SQLite and PostgreSQL dialect inserts), so a batch retried after a timeout, or a journal
replayed twice after a crash, counts each attempt once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.spend.records import SpendRecord
from turnout.tenancy.tables import spend


class SpendStore(Protocol):
    """A durable home for spend records."""

    async def write_many(self, records: Sequence[SpendRecord]) -> None:
        """Store `records` in one transaction; records already stored (by attempt id) are
        left as they are. Raises on any failure: nothing of the batch is then stored."""
        ...


class SqlSpendStore:
    """Spend records in the tenancy database (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self._insert: Insert = postgresql.insert(spend).on_conflict_do_nothing(
                index_elements=[spend.c.attempt_id])
        elif dialect == "sqlite":
            self._insert = sqlite.insert(spend).on_conflict_do_nothing(
                index_elements=[spend.c.attempt_id])
        else:
            raise ValueError(f"the spend ledger supports SQLite and PostgreSQL, not {dialect}")

    async def write_many(self, records: Sequence[SpendRecord]) -> None:
        if not records:
            return
        async with self._engine.begin() as conn:
            await conn.execute(self._insert, [record.row() for record in records])
