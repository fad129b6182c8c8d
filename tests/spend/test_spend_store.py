"""The SQL spend store on SQLite and PostgreSQL: rows as given, each attempt counted once
however often it is written."""

from __future__ import annotations

from _spend_db import count, record, rows
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.spend.store import SqlSpendStore


async def test_a_record_is_stored_column_for_column(engine: AsyncEngine) -> None:
    written = record("a1", tenant_id=None, key_id=None, stream=True, cached_input_tokens=3,
                     cache_write_tokens=2, reasoning_tokens=5, estimated=True,
                     conversation_id="conv-9")
    await SqlSpendStore(engine).write_many([written])
    stored = (await rows(engine))["a1"]
    assert stored.pop("started_at").timestamp() == written.started_at.timestamp()
    expected = written.row()
    expected.pop("started_at")
    assert stored == expected


async def test_writing_a_batch_again_counts_each_attempt_once(engine: AsyncEngine) -> None:
    store = SqlSpendStore(engine)
    batch = [record(f"a{i}") for i in range(50)]
    await store.write_many(batch)
    await store.write_many(batch)
    # A batch mixing stored and new attempts stores the new ones, leaves the others as
    # they were (the first write wins: a replayed `interrupted` record never replaces the
    # attempt's real one).
    await store.write_many([record("a0", outcome="interrupted", input_tokens=9999),
                            record("a50")])
    assert await count(engine) == 51
    stored = await rows(engine)
    assert stored["a0"]["outcome"] == "ok" and stored["a0"]["input_tokens"] == 10


async def test_an_empty_batch_is_no_write(engine: AsyncEngine) -> None:
    await SqlSpendStore(engine).write_many([])
    assert await count(engine) == 0
