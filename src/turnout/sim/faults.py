"""Fault specifications and the per-simulator FIFO queue that hands them out.

A `Fault` is plain data (validated, unknown keys rejected) so that it can be queued
in-process, posted to `/_sim/faults` or sent in an `x-sim-fault` header alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from turnout.core import errors
from turnout.core.errors import TurnoutError, error_class_for_status

FaultKind = Literal[
    "status", "hang", "slow_first_token", "slow_chunks", "reset", "cut_stream",
    "error_event", "malformed", "latency", "raw_stream",
]

STREAM_ONLY_KINDS: frozenset[str] = frozenset({"slow_chunks", "cut_stream", "error_event",
                                               "raw_stream"})
"""Kinds that only make sense for a streamed answer: they never match non-stream requests
(and so stay queued until a stream request comes)."""

_NEEDS_SECONDS = frozenset({"slow_first_token", "slow_chunks", "latency"})

ECHO_PREFIX = 12
"""Characters of the presented key an `echo_key: prefix` fault quotes."""


class FaultMatch(BaseModel):
    """Which requests a fault applies to; unset fields match anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    """The model the request asks for (Gemini: the model in the URL)."""
    stream: bool | None = None
    """True: only streaming requests; False: only non-streaming ones."""

    def matches(self, model: str | None, stream: bool) -> bool:
        if self.model is not None and self.model != model:
            return False
        return self.stream is None or self.stream == stream


class Fault(BaseModel):
    """One injected failure.

    Kinds:
    - `status`: answer `status` with `headers` and `body` (default: the dialect's error shape
      for the taxonomy error of that status, or of `error` when given as a taxonomy code).
    - `hang`: accept the request and never answer; with `seconds`, drop the connection after
      that long (an upstream that times out on its side).
    - `slow_first_token`: wait `seconds` before the first chunk (stream: headers are sent at
      once) or before the whole answer.
    - `slow_chunks`: wait `seconds` between stream chunks.
    - `reset`: abort the TCP connection without an answer; with `after_chunks` > 0, after
      that many chunks of a stream, or after the headers and half the body of a complete
      answer.
    - `cut_stream`: send `after_chunks` chunks, then end the body without the terminal event.
    - `error_event`: send `after_chunks` chunks, then an in-stream error event for `status`
      (default 529, overloaded) or `error`.
    - `malformed`: a 200 with invalid JSON; for a stream, a broken data line after
      `after_chunks` chunks.
    - `latency`: wait `seconds`, then answer normally.
    - `raw_stream`: instead of the simulated answer, send `chunks` verbatim (one write
      each), then end the body and close the connection. Exact wire sequences the
      simulator's own encoder never produces (an upstream that opens an empty block and
      drops, a stream that finishes with no content) are written this way; whether the
      stream ends cleanly depends only on whether the chunks hold its terminal event.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    status: int | None = Field(default=None, ge=100, le=599)
    error: str | None = None
    """A taxonomy code (`rate_limited`, `context_length_exceeded`, ...) that picks the error
    class for the default body, when the status alone is ambiguous."""
    message: str | None = None
    echo_key: Literal["whole", "prefix"] | None = None
    """Quote the API key the request presented in the error message, as some providers do
    ("Incorrect API key provided: ..."): the `whole` key, or its first `ECHO_PREFIX`
    characters. For `status` and `error_event` faults."""
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    """Error body for `status`: a JSON value, or a string sent verbatim."""
    seconds: float | None = Field(default=None, ge=0)
    after_chunks: int = Field(default=0, ge=0)
    chunks: list[str] | None = None
    """The raw body pieces of a `raw_stream` fault (SSE frames, with their blank lines)."""
    times: int = 1
    """How many matching requests this fault applies to; -1 means until cleared."""
    match: FaultMatch | None = None

    @model_validator(mode="after")
    def _check(self) -> Fault:
        if self.kind == "status" and self.status is None:
            raise ValueError("a status fault needs a status")
        if (self.kind == "raw_stream") != (self.chunks is not None):
            raise ValueError("chunks go with a raw_stream fault, and only with one")
        if self.kind in _NEEDS_SECONDS and self.seconds is None:
            raise ValueError(f"a {self.kind} fault needs seconds")
        if self.times == 0 or self.times < -1:
            raise ValueError("times must be positive, or -1 for until cleared")
        if self.error is not None and self.error not in error_codes():
            raise ValueError(f"unknown error code {self.error!r}")
        return self

    def applies_to(self, model: str | None, stream: bool) -> bool:
        """Whether this fault may apply to a request for `model` (streaming or not)."""
        if not stream and self.kind in STREAM_ONLY_KINDS:
            return False
        return self.match is None or self.match.matches(model, stream)

    def echoing(self, presented_key: str) -> Fault:
        """This fault with `echo_key` applied to the key a request presented."""
        if self.echo_key is None:
            return self
        quoted = presented_key if self.echo_key == "whole" else \
            presented_key[:ECHO_PREFIX] + "..."
        echo = f"Incorrect API key provided: {quoted}."
        return self.model_copy(update={
            "message": f"{self.message} {echo}" if self.message else echo, "echo_key": None})

    def to_error(self, simulator: str, default_status: int = 529) -> TurnoutError:
        """The taxonomy error this fault stands for (for default bodies and error events)."""
        status = self.status or default_status
        cls = error_codes()[self.error] if self.error else error_class_for_status(status)
        message = self.message or f"Simulated {cls.code} error from {simulator}"
        return cls(message, origin="upstream", provider=simulator, upstream_status=status)


def error_codes() -> dict[str, type[TurnoutError]]:
    """Every concrete taxonomy class by its code."""
    found: dict[str, type[TurnoutError]] = {}
    pending: list[type[TurnoutError]] = [TurnoutError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not errors.AllAttemptsFailed:
            found.setdefault(cls.code, cls)
    return found


@dataclass(slots=True)
class QueuedFault:
    """A fault waiting in a queue, with how many more requests it applies to."""

    fault: Fault
    remaining: int


class FaultQueue:
    """Faults of one simulator, applied in FIFO order: each request takes the first queued
    fault that applies to it."""

    def __init__(self) -> None:
        self._entries: list[QueuedFault] = []

    def add(self, faults: Fault | Iterable[Fault]) -> None:
        """Queue one fault or several, in order."""
        items = [faults] if isinstance(faults, Fault) else list(faults)
        self._entries.extend(QueuedFault(f, f.times) for f in items)

    def clear(self) -> None:
        self._entries.clear()

    def take(self, model: str | None, stream: bool) -> Fault | None:
        """The fault for a request (counting it as used), or None."""
        if not self._entries:  # the benchmarks' path: keep it to one check
            return None
        for i, entry in enumerate(self._entries):
            if entry.fault.applies_to(model, stream):
                if entry.remaining > 0:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        del self._entries[i]
                return entry.fault
        return None

    def pending(self) -> list[QueuedFault]:
        """A snapshot of the queue (remaining -1: until cleared)."""
        return [QueuedFault(e.fault, e.remaining) for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)
