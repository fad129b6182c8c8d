"""The local spend journal: what makes the ledger survive a gateway killed mid-request.

Each gateway process appends JSON lines to segment files of its own in one directory:

- a `start` line per attempt, written before the attempt is sent upstream, holding the
  record to charge if the attempt never ends: outcome `interrupted`, the attempt's worst
  case (its prompt counted offline plus its maximum output, flagged estimated);
- an `end` line with the attempt's final record, when its call ends.

A line is one `os.write` on an `O_APPEND` descriptor: once the call returns, the line is in
the kernel's page cache, which outlives the process (SIGKILL included) without an fsync; a
power cut may lose the last lines, a gateway crash loses none. The database write happens
later, in batches (`turnout.spend.writer`); a segment is deleted once it is not the one
being written, every attempt started in it has ended, and every end line in it is in the
database.

Every process holds an exclusive `flock` on a lock file named like its segments for as
long as it runs. `replay_dead` (run when a gateway starts, and now and then afterwards)
takes the lock of each journal whose process is gone (a live process's lock cannot be
taken, so two gateways sharing the directory never replay each other's live journal),
writes its ended records and, for attempts started but never ended, their `interrupted`
record, then deletes the journal, only after the database has accepted all of it. Writes
are idempotent per attempt id, so a replay cut short and run again, or a start line whose
end was already written, counts nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from turnout.spend.records import SpendRecord
from turnout.spend.store import SpendStore

_log = logging.getLogger("turnout.spend")

SEGMENT_BYTES = 8 * 1024 * 1024
"""A segment is closed and a new one opened once it holds this much."""
_START = b'{"j":"s",'
_END = b'{"j":"e",'
_LOCK = ".lock"
_PENDING_LOCK = ".lock.tmp"
_SEGMENT = ".jsonl"


@dataclass(slots=True)
class _Segment:
    path: Path
    open_starts: int = 0
    """Attempts started in this segment that have not ended."""
    unconfirmed: int = 0
    """End lines in this segment not yet in the database."""


class Journal:
    """This process's journal in `directory` (see the module docstring). Not thread-safe:
    used from the event loop only."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.prefix = f"spend-{os.getpid()}-{os.urandom(4).hex()}"
        self._segment_bytes = segment_bytes
        self._lock_fd = _take_lock(directory, self.prefix)
        self._segments: dict[int, _Segment] = {}
        self._seq = 0
        self._fd = -1
        self._size = 0
        self.spilled: dict[int, int] = {}
        """Segments holding end lines that are only on disk (the writer's queue was full),
        with the offset of the first such line not yet written to the database."""
        self._open_segment(1)

    @property
    def current(self) -> int:
        """The sequence number of the segment being written."""
        return self._seq

    def start(self, record: SpendRecord) -> int:
        """Journal an attempt about to be sent (its worst-case record); returns its segment."""
        seq = self._seq
        self._write(_START + record.to_json()[1:] + b"\n")
        self._segments[seq].open_starts += 1
        self._rotate_if_full()
        return seq

    def end(self, record: SpendRecord, started_in: int) -> tuple[int, int]:
        """Journal an attempt's final record; returns the segment and offset of the line."""
        seq, offset = self._seq, self._size
        self._write(_END + record.to_json()[1:] + b"\n")
        started = self._segments.get(started_in)
        if started is not None:
            started.open_starts -= 1
        self._segments[seq].unconfirmed += 1
        self._rotate_if_full()
        return seq, offset

    def confirm(self, segments: Iterable[int]) -> None:
        """These end lines (one segment number each) are in the database."""
        for seq in segments:
            segment = self._segments.get(seq)
            if segment is not None:
                segment.unconfirmed -= 1
        self._collect()

    def spill(self, seq: int, offset: int) -> None:
        """The end line at `offset` of `seq` is only on disk, and so is every later one of
        that segment: `read_spilled` reads them back."""
        self.spilled.setdefault(seq, offset)

    def rotate(self) -> None:
        """Close the current segment and open the next one."""
        self._open_segment(self._seq + 1)

    def read_spilled(self, seq: int, limit: int) -> tuple[list[SpendRecord], int, bool]:
        """Up to `limit` spilled end records of closed segment `seq`, the offset after
        them, and whether the segment has no more."""
        assert seq != self._seq, "only closed segments are read back"
        offset = self.spilled[seq]
        records: list[SpendRecord] = []
        with self._segments[seq].path.open("rb") as file:
            file.seek(offset)
            for line in file:
                offset += len(line)
                if line.startswith(_END):
                    record = _parse(line, self._segments[seq].path)
                    if record is not None:
                        records.append(record)
                        if len(records) >= limit:
                            break
            else:
                return records, offset, True
        return records, offset, False

    def recovered(self, seq: int, offset: int, count: int, done: bool) -> None:
        """`count` spilled end records of `seq`, up to `offset`, are in the database."""
        self._segments[seq].unconfirmed -= count
        if done:
            del self.spilled[seq]
        else:
            self.spilled[seq] = offset
        self._collect()

    @property
    def pending_segments(self) -> int:
        return len(self._segments)

    def close(self) -> None:
        """Stop journaling. A journal whose every record is in the database is deleted;
        otherwise its files stay and the next replay (of any process) finishes them."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        clean = all(s.open_starts == 0 and s.unconfirmed == 0
                    for s in self._segments.values()) and not self.spilled
        if clean:
            for segment in self._segments.values():
                segment.path.unlink(missing_ok=True)
            (self.directory / (self.prefix + _LOCK)).unlink(missing_ok=True)
        os.close(self._lock_fd)  # releases the lock: a replay may take what is left

    def _write(self, line: bytes) -> None:
        if self._fd < 0:
            raise OSError("the spend journal is closed")
        os.write(self._fd, line)
        self._size += len(line)

    def _rotate_if_full(self) -> None:
        # After the line's bookkeeping: a rotation collects segments, and must see it.
        if self._size >= self._segment_bytes:
            self.rotate()

    def _open_segment(self, seq: int) -> None:
        path = self.directory / f"{self.prefix}.{seq:06d}{_SEGMENT}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        old, self._fd, self._seq, self._size = self._fd, fd, seq, 0
        self._segments[seq] = _Segment(path)
        if old >= 0:
            os.close(old)
        self._collect()

    def _collect(self) -> None:
        done = [seq for seq, s in self._segments.items()
                if seq != self._seq and s.open_starts <= 0 and s.unconfirmed <= 0
                and seq not in self.spilled]
        for seq in done:
            self._segments.pop(seq).path.unlink(missing_ok=True)


def _take_lock(directory: Path, prefix: str) -> int:
    """Create this process's lock file, already locked when it appears under its name (a
    replay never sees it unlocked)."""
    pending = directory / (prefix + _PENDING_LOCK)
    fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(pending, directory / (prefix + _LOCK))
    return fd


def _parse(line: bytes, path: Path) -> SpendRecord | None:
    try:
        return SpendRecord.from_json(line)
    except (ValueError, TypeError, KeyError):
        # A torn last line (a power cut): at most one attempt, reported, not fatal.
        _log.warning("skipped a malformed line in spend journal %s", path.name)
        return None


# -- replay ----------------------------------------------------------------------------

@dataclass(slots=True)
class Replayed:
    """What one `replay_dead` run wrote."""

    journals: int = 0
    ended: int = 0
    """Records of attempts that had ended (some may have been in the database already)."""
    interrupted: int = 0
    """Attempts that never ended, charged at their worst case."""


async def replay_dead(directory: Path, store: SpendStore, *, batch: int = 500) -> Replayed:
    """Write and delete the journals in `directory` whose process is gone. Raises when the
    store fails (the journals are kept, for the next try)."""
    result = Replayed()
    for prefix, lock_fd in await asyncio.to_thread(_dead_journals, directory):
        try:
            segments = await asyncio.to_thread(_segments_of, directory, prefix)
            ended, interrupted = await _replay_one(segments, store, batch)
            await asyncio.to_thread(_delete, [*segments, directory / (prefix + _LOCK)])
        finally:
            if lock_fd >= 0:
                os.close(lock_fd)
        result.journals += 1
        result.ended += ended
        result.interrupted += interrupted
    return result


def _segments_of(directory: Path, prefix: str) -> list[Path]:
    return sorted(directory.glob(f"{prefix}.*{_SEGMENT}"))


def _delete(paths: list[Path]) -> None:
    for path in paths:  # segments first: the lock goes last
        path.unlink(missing_ok=True)


def _dead_journals(directory: Path) -> list[tuple[str, int]]:
    """Journal prefixes whose owner is gone, each with its lock now held by us (-1 for
    segments left without a lock file)."""
    if not directory.is_dir():
        return []
    dead: list[tuple[str, int]] = []
    locked: set[str] = set()
    for lock in sorted(directory.glob(f"spend-*{_LOCK}")):
        prefix = lock.name.removesuffix(_LOCK)
        locked.add(prefix)
        fd = _try_lock(lock)
        if fd is not None:
            dead.append((prefix, fd))
    for pending in directory.glob(f"spend-*{_PENDING_LOCK}"):
        # A process killed between creating its lock and naming it: it wrote nothing.
        locked.add(pending.name.removesuffix(_PENDING_LOCK))
        if time.time() - _mtime(pending) > 60:
            fd = _try_lock(pending)
            if fd is not None:
                pending.unlink(missing_ok=True)
                os.close(fd)
    orphans = {p.name.split(".", 1)[0] for p in directory.glob(f"spend-*{_SEGMENT}")}
    dead.extend((prefix, -1) for prefix in sorted(orphans - locked))
    return dead


def _try_lock(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:  # another replay finished it meanwhile
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # its process is alive
        os.close(fd)
        return None
    if not path.exists():  # replayed and deleted between our open and our lock
        os.close(fd)
        return None
    return fd


def _mtime(path: Path) -> float:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_mtime
    return time.time()


async def _replay_one(segments: list[Path], store: SpendStore, batch: int) -> tuple[int, int]:
    """Write every end record, then the start record of every attempt without one. Reads
    a batch at a time (in a thread), so a journal of a long outage is never all in memory:
    only the ids of the attempts that ended are kept."""
    ended: set[str] = set()
    count = 0
    lines = _batches(segments, _END, batch)
    while (records := await asyncio.to_thread(next, lines, None)) is not None:
        await store.write_many(records)
        ended.update(r.attempt_id for r in records)
        count += len(records)
    interrupted = 0
    lines = _batches(segments, _START, batch)
    while (records := await asyncio.to_thread(next, lines, None)) is not None:
        missing = [r for r in records if r.attempt_id not in ended]
        await store.write_many(missing)
        interrupted += len(missing)
    return count, interrupted


def _batches(segments: list[Path], kind: bytes, batch: int) -> Iterator[list[SpendRecord]]:
    """The records of one kind of line, `batch` at a time."""
    records: list[SpendRecord] = []
    for path in segments:
        with path.open("rb") as file:
            for line in file:
                if not line.startswith(kind):
                    continue
                record = _parse(line, path)
                if record is None:
                    continue
                records.append(record)
                if len(records) >= batch:
                    yield records
                    records = []
    if records:
        yield records


def parse_line(line: bytes) -> tuple[str, SpendRecord]:
    """A journal line as (`start` or `end`, record); for tests and tools."""
    kind = orjson.loads(line).get("j")
    return ("start" if kind == "s" else "end"), SpendRecord.from_json(line)
