"""A pair of event counters over a sliding time window: a ring of fixed-width buckets.

Shared by the circuit breaker (calls, failures) and the retry/hedge budgets (requests,
retries). Each update touches one bucket plus the buckets that expired since the last
update; a bucket is cleared at most once per window, so updates are O(1) amortised and the
running totals are always at hand without summing the ring.
"""

from __future__ import annotations


class SlidingCounts:
    """Counts `first` and `second` events over roughly the last `window_s` seconds.

    Resolution is one bucket: the window always holds the current (partial) bucket plus the
    `buckets - 1` before it, i.e. between `window_s * (buckets - 1) / buckets` and
    `window_s` seconds of history."""

    __slots__ = ("_first", "_head", "_n", "_second", "_width", "first", "second")

    def __init__(self, window_s: float, buckets: int) -> None:
        if window_s <= 0 or buckets < 1:
            raise ValueError("window_s must be > 0 and buckets >= 1")
        self._width = window_s / buckets
        self._n = buckets
        self._first = [0] * buckets
        self._second = [0] * buckets
        self._head: int | None = None
        """Bucket epoch (time // width) of the newest bucket written."""
        self.first = 0
        """Events of the first kind in the window, as of the last `add`/`advance`."""
        self.second = 0
        """Events of the second kind in the window, as of the last `add`/`advance`."""

    def advance(self, now: float) -> int:
        """Expire buckets older than the window; returns the current bucket's index."""
        epoch = int(now // self._width)
        head = self._head
        if head is None:
            self._head = epoch
            return epoch % self._n
        if epoch > head:
            # Clear every bucket we skipped over (at most the whole ring once).
            for k in range(1, min(epoch - head, self._n) + 1):
                i = (head + k) % self._n
                self.first -= self._first[i]
                self.second -= self._second[i]
                self._first[i] = 0
                self._second[i] = 0
            self._head = epoch
            return epoch % self._n
        # Same bucket, or a clock that stepped back: keep counting in the newest bucket.
        return head % self._n

    def add(self, now: float, first: int = 0, second: int = 0) -> None:
        """Count events that happened at `now`."""
        i = self.advance(now)
        self._first[i] += first
        self._second[i] += second
        self.first += first
        self.second += second

    def clear(self) -> None:
        """Forget every event (e.g. when a breaker trips, stale failures must not count
        again after it closes)."""
        for i in range(self._n):
            self._first[i] = 0
            self._second[i] = 0
        self.first = 0
        self.second = 0
