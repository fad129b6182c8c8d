"""The ledger writer: spend records into the database in batches, off the request path.

A call's records are journaled (`turnout.spend.journal`) and queued in memory; a background
task writes the queue every `interval_s`, or as soon as `batch` records wait, one
transaction per batch. When the database fails, the batch stays queued and is retried with
a growing backoff (up to `max_backoff_s`); nothing is dropped. Memory stays bounded: once
`max_pending` records wait, further records are **spilled**: kept only in the journal,
whose segments are read back and written when the database is back. The same task
replays, at start and every `replay_every_s`, the journals of gateway processes that died
(`replay_dead`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from turnout.spend.journal import Journal, Replayed, replay_dead
from turnout.spend.records import SpendRecord
from turnout.spend.store import SpendStore

_log = logging.getLogger("turnout.spend")

StoreFactory = Callable[[], Awaitable[SpendStore]]
"""Opens the store (may fail while the database is down; asked again at the next try)."""


class LedgerWriter:
    """The journal and the database writer of one ledger (one database and directory)."""

    def __init__(self, directory: Path, open_store: StoreFactory, *,
                 max_pending: int = 10_000, batch: int = 500, interval_s: float = 0.5,
                 max_backoff_s: float = 30.0, replay_every_s: float = 60.0,
                 segment_bytes: int | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._open_store = open_store
        self._store: SpendStore | None = None
        self._max_pending = max_pending
        self._batch = batch
        self._interval_s = interval_s
        self._max_backoff_s = max_backoff_s
        self._replay_every_s = replay_every_s
        self._segment_bytes = segment_bytes
        self._monotonic = monotonic
        self._journal: Journal | None = None
        self._queue: deque[tuple[SpendRecord, int]] = deque()
        self._spilling = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failing_since: float | None = None
        self._last_warning = 0.0
        self._streak = 0
        """Failed writes in a row (the backoff grows with it)."""
        self._draining = asyncio.Lock()
        self._next_replay = 0.0
        self.written = 0
        """Records written to the database (replays included)."""
        self.spilled = 0
        """Records only in the journal now, waiting to be read back."""
        self.spilled_total = 0
        self.write_failures = 0
        """Failed database writes (each retried)."""
        self.replayed = 0
        """Records written from dead processes' journals."""
        self.journal_failures = 0
        """Journal lines that could not be written (the record is then in memory only)."""

    @property
    def pending(self) -> int:
        """Records waiting in memory for the database."""
        return len(self._queue)

    @property
    def degraded(self) -> bool:
        """The database is failing (records wait in memory and the journal)."""
        return self._failing_since is not None

    # -- the request path: no I/O but one write to the journal each ---------------------------
    def started(self, record: SpendRecord) -> int:
        """Journal an attempt about to be sent, charged at `record` if it never ends.
        Returns its segment, for `ended`."""
        try:
            return self._opened().start(record)
        except OSError:
            self._journal_failed()
            return -1

    def ended(self, record: SpendRecord, started_in: int) -> None:
        """An attempt's final record: journaled, then queued (or spilled) for the database."""
        if self._task is None and not self._closed:
            self._spawn()
        try:
            seq, offset = self._opened().end(record, started_in)
        except OSError:
            self._journal_failed()
            seq, offset = -1, -1
        if (self._spilling or len(self._queue) >= self._max_pending) and seq >= 0:
            self._spilling = True
            self._opened().spill(seq, offset)
            self.spilled += 1
            self.spilled_total += 1
            return
        self._queue.append((record, seq))
        if len(self._queue) >= self._batch:
            self._wake.set()

    def _opened(self) -> Journal:
        journal = self._journal
        if journal is None:
            if self._closed:
                raise OSError("the spend ledger is closed")
            journal = self._journal = (
                Journal(self.directory) if self._segment_bytes is None
                else Journal(self.directory, segment_bytes=self._segment_bytes))
        return journal

    def _journal_failed(self) -> None:
        self.journal_failures += 1
        if self.journal_failures == 1 or self.journal_failures % 1000 == 0:
            _log.exception("could not write the spend journal in %s (%d lines so far): "
                           "records are kept in memory only", self.directory,
                           self.journal_failures)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, *, replay_timeout_s: float = 10.0) -> None:
        """Open the journal, replay dead processes' journals (waiting up to
        `replay_timeout_s`; a failure is retried in the background), start writing."""
        self._opened()
        if self._task is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(replay_timeout_s):
                    await self._replay()
            self._spawn()

    def _spawn(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="spend-ledger")

    async def flush(self) -> bool:
        """Write what waits now (queue and spilled records); False if the database failed."""
        return await self._drain()


    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Stop, after writing what waits (for up to `timeout_s`). What could not be
        written stays in the journal, for the next start."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            # Never cut a write mid-transaction: a cancelled SQLite write may keep its lock
            # until its connection is collected, and the final writes below would wait on it.
            async with self._draining:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while True:
                    if not (self._queue or self.spilled) or await self._drain():
                        break
                    await asyncio.sleep(0.2)  # the database fails: try again shortly
        if self._queue or self.spilled:
            _log.warning("spend ledger closed with %d records not in the database; they are "
                         "in the journal %s and will be written at the next start",
                         len(self._queue) + self.spilled, self.directory)
        if self._journal is not None:
            self._journal.close()

    # -- the background task -----------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            delay = self._interval_s if self._failing_since is None else self._backoff()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            if await self._drain() and self._monotonic() >= self._next_replay:
                await self._replay()

    def _backoff(self) -> float:
        streak = min(self._streak, 16)
        return min(self._interval_s * float(2 ** streak), self._max_backoff_s)

    async def _drain(self) -> bool:
        async with self._draining:  # one writer at a time: the queue is popped after a write
            return await self._drain_once()

    async def _drain_once(self) -> bool:
        try:
            store = self._store or await self._connect()
            queue = self._queue
            # Only what waits now: records arriving meanwhile wait for the next round, so
            # batches stay large (writing on until the queue is empty wrote the few records
            # each write let in, one small transaction after another: 16 a batch, measured).
            waiting = len(queue)
            while waiting > 0 and queue:
                chunk = list(itertools.islice(queue, min(self._batch, waiting)))
                waiting -= len(chunk)
                await store.write_many([record for record, _ in chunk])
                for _ in chunk:
                    queue.popleft()
                self.written += len(chunk)
                if self._journal is not None:
                    self._journal.confirm(seq for _, seq in chunk if seq >= 0)
            if self._spilling:
                # The queue is empty, the database answers: records go to memory again, and
                # what was spilled is read back from closed segments.
                journal = self._opened()
                if journal.current in journal.spilled:
                    journal.rotate()
                self._spilling = False
            if self._journal is not None and self._journal.spilled:
                await self._recover(store, self._journal)
        except Exception as exc:
            self._failed(exc)
            return False
        self._streak = 0
        if self._failing_since is not None:
            _log.warning("spend ledger: the database is back after %.1f s",
                         self._monotonic() - self._failing_since)
            self._failing_since = None
        return True

    async def _connect(self) -> SpendStore:
        self._store = await self._open_store()
        return self._store

    async def _recover(self, store: SpendStore, journal: Journal) -> None:
        for seq in [s for s in journal.spilled if s != journal.current]:
            done = False
            while not done:
                records, offset, done = journal.read_spilled(seq, self._batch)
                await store.write_many(records)
                journal.recovered(seq, offset, len(records), done)
                self.spilled -= len(records)
                self.written += len(records)
        if not journal.spilled:
            self.spilled = 0  # lines lost to a torn write are not waited for

    async def _replay(self) -> None:
        try:
            store = self._store or await self._connect()
            async with self._draining:
                replayed: Replayed = await replay_dead(self.directory, store,
                                                       batch=self._batch)
        except Exception as exc:
            self._failed(exc)
            self._next_replay = self._monotonic() + self._backoff()
            return
        self._next_replay = self._monotonic() + self._replay_every_s
        if replayed.journals:
            self.replayed += replayed.ended + replayed.interrupted
            self.written += replayed.ended + replayed.interrupted
            _log.warning("spend ledger: replayed the journals of %d stopped gateway "
                         "processes: %d records, %d of them attempts interrupted in flight "
                         "(charged at their worst case)", replayed.journals,
                         replayed.ended + replayed.interrupted, replayed.interrupted)

    def _failed(self, exc: Exception) -> None:
        self.write_failures += 1
        self._streak += 1
        now = self._monotonic()
        if self._failing_since is None:
            self._failing_since = now
            self._last_warning = now
            _log.warning("spend ledger: could not write to the database (%s); %d records "
                         "wait in memory, %d in the journal; retrying",
                         type(exc).__name__, len(self._queue), self.spilled)
        elif now - self._last_warning >= 30.0:
            self._last_warning = now
            _log.warning("spend ledger: the database still fails (%s) after %.0f s; %d "
                         "records wait in memory, %d in the journal", type(exc).__name__,
                         now - self._failing_since, len(self._queue), self.spilled)
