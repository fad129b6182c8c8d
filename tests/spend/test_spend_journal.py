"""The spend journal: segments kept exactly until their records are in the database, and
the replay of journals whose process died: every ended record once, every attempt that
never ended charged at its worst case, live journals never touched."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from _spend_db import count, record, rows
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.spend.journal import Journal, parse_line, replay_dead
from turnout.spend.records import SpendRecord
from turnout.spend.store import SqlSpendStore

SRC = Path(__file__).resolve().parents[2] / "src"


def files(directory: Path, suffix: str = ".jsonl") -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(suffix))


def lines(directory: Path) -> list[tuple[str, SpendRecord]]:
    return [parse_line(line) for path in files(directory)
            for line in path.read_bytes().splitlines()]


def worst(attempt_id: str) -> SpendRecord:
    return record(attempt_id, outcome="interrupted", status=0, input_tokens=100,
                  output_tokens=4096, cost_micro_usd=5000, estimated=True)


class Store:
    """A store counting what it was asked to write."""

    def __init__(self, inner: SqlSpendStore) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []

    async def write_many(self, records: Sequence[SpendRecord]) -> None:
        self.batches.append([r.attempt_id for r in records])
        await self.inner.write_many(records)


def test_start_and_end_lines_hold_the_records(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    seq = journal.start(worst("a1"))
    journal.end(record("a1"), seq)
    assert lines(tmp_path) == [("start", worst("a1")), ("end", record("a1"))]
    journal.close()


def test_a_segment_goes_once_its_attempts_ended_and_their_records_are_stored(
        tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=1)  # every line closes its segment
    first = journal.start(worst("a1"))            # segment 1
    second = journal.start(worst("a2"))           # segment 2
    end_seq, _ = journal.end(record("a1"), first)  # segment 3
    # Segment 1 goes at once: its attempt ended, the end line (segment 3) holds the rest.
    # The current segment, 4, is empty.
    assert [p.name.rsplit(".", 2)[1] for p in files(tmp_path)] == ["000002", "000003",
                                                                   "000004"]
    journal.confirm([end_seq])
    # Segment 3: its end line is stored. Segment 2: a2 is still in flight.
    assert [p.name.rsplit(".", 2)[1] for p in files(tmp_path)] == ["000002", "000004"]
    journal.end(record("a2"), second)  # segment 4, not stored yet; 5 is current
    assert [p.name.rsplit(".", 2)[1] for p in files(tmp_path)] == ["000004", "000005"]
    journal.close()  # not all stored: the files stay for a replay
    assert len(files(tmp_path)) == 2 and files(tmp_path, ".lock")


def test_a_clean_close_leaves_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    seq, _ = journal.end(record("a1"), journal.start(worst("a1")))
    journal.confirm([seq])
    journal.close()
    assert list(tmp_path.iterdir()) == []


async def test_replay_writes_ended_records_and_charges_unended_attempts_at_worst_case(
        tmp_path: Path, engine: AsyncEngine) -> None:
    dead = Journal(tmp_path / "j")
    done = dead.start(worst("ok-1"))
    dead.start(worst("lost-1"))
    dead.end(record("ok-1"), done)
    dead.close()  # as a crash leaves it: nothing confirmed, lock released
    replayed = await replay_dead(tmp_path / "j", SqlSpendStore(engine))
    assert (replayed.journals, replayed.ended, replayed.interrupted) == (1, 1, 1)
    stored = await rows(engine)
    assert stored["ok-1"]["outcome"] == "ok" and stored["ok-1"]["input_tokens"] == 10
    lost = stored["lost-1"]
    assert (lost["outcome"], lost["estimated"], lost["input_tokens"],
            lost["output_tokens"], lost["cost_micro_usd"]) == ("interrupted", True, 100,
                                                                4096, 5000)
    assert list((tmp_path / "j").iterdir()) == []  # deleted once stored


async def test_replaying_the_same_journal_twice_counts_once(
        tmp_path: Path, engine: AsyncEngine) -> None:
    directory = tmp_path / "j"
    dead = Journal(directory)
    for i in range(20):
        seq = dead.start(worst(f"a{i}"))
        if i % 2:
            dead.end(record(f"a{i}"), seq)
    dead.close()
    saved = {p.name: p.read_bytes() for p in directory.iterdir()}
    store = SqlSpendStore(engine)
    await replay_dead(directory, store)
    for name, data in saved.items():  # a replay killed before it deleted the journal
        (directory / name).write_bytes(data)
    again = await replay_dead(directory, store)
    assert again.journals == 1
    assert await count(engine) == 20
    stored = await rows(engine)
    assert sum(r["outcome"] == "interrupted" for r in stored.values()) == 10


async def test_an_attempt_stored_before_the_crash_is_not_charged_again(
        tmp_path: Path, sqlite_engine: AsyncEngine) -> None:
    store = SqlSpendStore(sqlite_engine)
    directory = tmp_path / "j"
    dead = Journal(directory, segment_bytes=1)
    started = dead.start(worst("a1"))
    end_seq, _ = dead.end(record("a1"), started)
    await store.write_many([record("a1")])
    dead.confirm([end_seq])  # its end line's segment is deleted, its start line's too
    dead.start(worst("a2"))
    dead.close()
    await replay_dead(directory, store)
    stored = await rows(sqlite_engine)
    assert stored["a1"]["outcome"] == "ok" and stored["a2"]["outcome"] == "interrupted"


async def test_a_torn_last_line_is_skipped(tmp_path: Path, sqlite_engine: AsyncEngine) -> None:
    directory = tmp_path / "j"
    dead = Journal(directory)
    dead.end(record("a1"), dead.start(worst("a1")))
    dead.close()
    segment = files(directory)[0]
    with segment.open("ab") as file:
        file.write(record("a2").to_json()[:40])  # a power cut mid-line
    replayed = await replay_dead(directory, SqlSpendStore(sqlite_engine))
    assert (replayed.ended, await count(sqlite_engine)) == (1, 1)


async def test_a_live_process_journal_is_never_replayed_a_killed_ones_is(
        tmp_path: Path, sqlite_engine: AsyncEngine) -> None:
    directory = tmp_path / "j"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(SRC)!r})
        from datetime import UTC, datetime
        from turnout.spend.journal import Journal
        from turnout.spend.records import SpendRecord
        journal = Journal(Path({str(directory)!r}))
        journal.start(SpendRecord("live-1", "r", None, None, "chat", "p", "d", "m",
                                  datetime.now(UTC), 0, "interrupted", 0, False,
                                  input_tokens=7, estimated=True))
        print("ready", flush=True)
        time.sleep(60)
    """)
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script,
                                                   stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
        store = SqlSpendStore(sqlite_engine)
        assert (await replay_dead(directory, store)).journals == 0  # alive: its lock holds
        assert len(files(directory)) == 1
        mine = Journal(directory)  # a live journal of this process is not replayed either
        mine.start(worst("mine-1"))
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        replayed = await replay_dead(directory, store)
        assert (replayed.journals, replayed.interrupted) == (1, 1)
        assert list(await rows(sqlite_engine)) == ["live-1"]
        assert [p.name.startswith(mine.prefix) for p in files(directory)] == [True]
        mine.close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
