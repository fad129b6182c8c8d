"""Where spend records end up: the `turnout_spend` table, written in batches.

Every write is idempotent per attempt: `INSERT ... ON CONFLICT (attempt_id) DO NOTHING`
(SQLite and PostgreSQL dialect inserts), so a batch retried after a timeout, or a journal
replayed twice after a crash, counts each attempt once.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any, Protocol

from sqlalchemy import Insert, bindparam
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
    """Spend records in the tenancy database (SQLite or PostgreSQL).

    The insert is compiled once for the database's dialect and sent as the driver's own
    executemany of plain tuples, each value passed through its column type's bind
    processor as SQLAlchemy would (SQLite's datetimes and booleans): per record that is a
    tenth of the CPU of a Core `execute` with a list of dicts, and batches are written by
    a background task while the gateway serves.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect
        columns = list(spend.c)
        values = {c.name: bindparam(c.name, type_=c.type) for c in columns}
        key = [spend.c.attempt_id]
        statement: Insert
        if dialect.name == "postgresql":
            statement = postgresql.insert(spend).values(values).on_conflict_do_nothing(
                index_elements=key)
        elif dialect.name == "sqlite":
            statement = sqlite.insert(spend).values(values).on_conflict_do_nothing(
                index_elements=key)
        else:
            raise ValueError("the spend ledger supports SQLite and PostgreSQL, not "
                             f"{dialect.name}")
        compiled = statement.compile(dialect=dialect)
        order = compiled.positiontup
        if order is None:  # a named paramstyle: not what either driver uses
            raise ValueError(f"unexpected parameter style {dialect.paramstyle!r}")
        self._sql = str(compiled)
        by_name = {c.name: c for c in columns}
        self._values = attrgetter(*order)
        self._convert = [(i, convert) for i, name in enumerate(order)
                         if (convert := by_name[name].type.bind_processor(dialect))]

    async def write_many(self, records: Sequence[SpendRecord]) -> None:
        if not records:
            return
        values, converts = self._values, self._convert
        rows: list[Any] = [values(record) for record in records]
        if converts:
            for n, row in enumerate(rows):
                row = list(row)
                for i, convert in converts:
                    if row[i] is not None:
                        row[i] = convert(row[i])
                rows[n] = tuple(row)
        async with self._engine.begin() as conn:
            await conn.exec_driver_sql(self._sql, rows)
