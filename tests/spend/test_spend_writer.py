"""The ledger writer: batches off the request path, nothing lost while the database is
down, memory bounded by spilling to the journal, everything written once when it is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from _spend_db import count, record
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.spend.journal import Journal
from turnout.spend.records import SpendRecord
from turnout.spend.store import SqlSpendStore
from turnout.spend.writer import LedgerWriter


class FlakyStore:
    """A store that can be down, counting every attempt id it stored and how often."""

    def __init__(self) -> None:
        self.down = False
        self.writes: dict[str, int] = {}
        self.batches = 0

    async def write_many(self, records: Sequence[SpendRecord]) -> None:
        if self.down:
            raise ConnectionRefusedError("database down")
        self.batches += 1
        for r in records:
            self.writes[r.attempt_id] = self.writes.get(r.attempt_id, 0) + 1


def writer_for(directory: Path, store: FlakyStore, **options: object) -> LedgerWriter:
    async def open_store() -> FlakyStore:
        return store
    return LedgerWriter(directory, open_store, **options)  # type: ignore[arg-type]


def attempt(writer: LedgerWriter, attempt_id: str) -> None:
    seq = writer.started(record(attempt_id, outcome="interrupted", estimated=True))
    writer.ended(record(attempt_id), seq)


def leftovers(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def journal_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".jsonl")]


async def test_records_are_written_in_batches_not_one_by_one(tmp_path: Path) -> None:
    store = FlakyStore()
    writer = writer_for(tmp_path, store, interval_s=0.05, batch=100)
    await writer.start()
    for i in range(250):
        attempt(writer, f"a{i}")
    assert store.writes == {}  # nothing on the request path
    await writer.aclose()
    assert len(store.writes) == 250 and set(store.writes.values()) == {1}
    assert store.batches <= 4
    assert leftovers(tmp_path) == []  # all stored: the journal is gone


async def test_while_the_database_is_down_memory_is_bounded_and_nothing_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    store.down = True
    writer = writer_for(tmp_path, store, max_pending=1000, batch=200, interval_s=0.01,
                        segment_bytes=256 * 1024)
    await writer.start()
    with caplog.at_level(logging.WARNING, "turnout.spend"):
        for i in range(12_000):
            attempt(writer, f"a{i}")
            if i % 2000 == 0:
                await asyncio.sleep(0.02)  # the writer tries, and fails
    assert writer.pending == 1000  # the bound
    assert writer.spilled == 11_000 and writer.write_failures >= 1 and writer.degraded
    assert "could not write to the database" in caplog.text
    assert len(journal_files(tmp_path)) > 1  # rotated while spilling
    store.down = False
    assert await writer.flush()
    assert (writer.pending, writer.spilled, writer.degraded) == (0, 0, False)
    assert len(store.writes) == 12_000
    assert set(store.writes.values()) == {1}  # each once: spilled ones are not in memory
    for i in range(10):  # and back to memory afterwards
        attempt(writer, f"b{i}")
    assert writer.pending == 10 and writer.spilled == 0
    await writer.aclose()
    assert len(store.writes) == 12_010
    assert leftovers(tmp_path) == []


async def test_a_gateway_stopped_while_the_database_is_down_leaves_the_records_for_the_next(
        tmp_path: Path, sqlite_engine: AsyncEngine) -> None:
    tmp_path = tmp_path / "journal"
    store = FlakyStore()
    store.down = True
    writer = writer_for(tmp_path, store, max_pending=5)
    await writer.start(replay_timeout_s=1)
    for i in range(20):
        attempt(writer, f"a{i}")
    writer.started(record("inflight", outcome="interrupted", estimated=True))
    await writer.aclose(timeout_s=0.3)
    assert store.writes == {}
    # The next gateway, with the database back, replays it at its start.
    real = SqlSpendStore(sqlite_engine)

    async def open_real() -> SqlSpendStore:
        return real
    after = LedgerWriter(tmp_path, open_real)
    await after.start()
    assert await count(sqlite_engine) == 21 and after.replayed == 21
    await after.aclose()
    assert leftovers(tmp_path) == []


async def test_a_database_that_cannot_be_opened_is_retried(tmp_path: Path) -> None:
    store = FlakyStore()
    opened = 0

    async def open_store() -> FlakyStore:
        nonlocal opened
        opened += 1
        if opened < 3:
            raise OSError("connection refused")
        return store
    writer = LedgerWriter(tmp_path, open_store, interval_s=0.01)  # type: ignore[arg-type]
    await writer.start()
    attempt(writer, "a1")
    for _ in range(200):
        if store.writes:
            break
        await asyncio.sleep(0.02)
    assert store.writes == {"a1": 1} and writer.write_failures >= 1
    await writer.aclose()


async def test_the_journal_is_written_before_the_database_sees_anything(tmp_path: Path) -> None:
    store = FlakyStore()
    writer = writer_for(tmp_path, store)
    writer.started(record("a1", outcome="interrupted"))
    (segment,) = journal_files(tmp_path)
    assert b'"attempt_id":"a1"' in segment.read_bytes()
    await writer.aclose()


def test_a_journal_prefix_is_unique_per_journal(tmp_path: Path) -> None:
    first, second = Journal(tmp_path), Journal(tmp_path)
    assert first.prefix != second.prefix
    first.close()
    second.close()


async def test_records_arriving_during_a_write_wait_for_the_next_batch(tmp_path: Path) -> None:
    """Otherwise each write lets in a few records, written at once in a small transaction
    of their own: a busy gateway would write one tiny batch after another."""
    release = asyncio.Event()

    class SlowStore(FlakyStore):
        async def write_many(self, records: Sequence[SpendRecord]) -> None:
            await release.wait()
            await super().write_many(records)

    store = SlowStore()
    writer = writer_for(tmp_path, store, interval_s=60.0)  # no background round meanwhile
    for i in range(10):
        attempt(writer, f"a{i}")
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0.01)  # the write of those 10 is under way
    for i in range(10, 100):
        attempt(writer, f"a{i}")
    release.set()
    assert await flushing
    assert (store.batches, len(store.writes), writer.pending) == (1, 10, 90)
    assert await writer.flush()
    assert (store.batches, len(store.writes), writer.pending) == (2, 100, 0)
    await writer.aclose()
