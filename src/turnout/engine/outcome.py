"""What the engine hands back: the answer and which deployment produced it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from turnout.core.events import StreamEvent
from turnout.core.response import ChatResponse
from turnout.providers.types import Deployment


@dataclass(slots=True)
class ChatOutcome:
    """A complete answer."""

    deployment: Deployment
    response: ChatResponse


Batch = list[StreamEvent]
"""The events one upstream network read brought: relayed to the client in one write."""


class BatchIterator(Protocol):
    """Batches of stream events; `aclose()` ends the stream (and cancels the upstream)."""

    def __aiter__(self) -> AsyncIterator[Batch]: ...

    async def __anext__(self) -> Batch: ...

    async def aclose(self) -> None: ...


class StartedBatches:
    """An async generator of batches already run up to its first batch, so that `aclose()`
    always runs its cleanup (`finally` blocks), even when nobody iterates it: closing a
    generator that never started skips its body entirely, which would leak the in-flight
    count, the upstream connection and the pipeline's end-of-call hooks."""

    __slots__ = ("_first", "_gen")

    def __init__(self, gen: AsyncGenerator[Batch, None], first: Batch | None) -> None:
        self._gen = gen
        self._first = first

    @classmethod
    async def start(cls, gen: AsyncGenerator[Batch, None]) -> StartedBatches:
        """Run `gen` to its first batch (no I/O when the stream was already peeked)."""
        try:
            first = await gen.__anext__()
        except StopAsyncIteration:
            return cls(gen, None)
        return cls(gen, first)

    def __aiter__(self) -> StartedBatches:
        return self

    async def __anext__(self) -> Batch:
        first = self._first
        if first is not None:
            self._first = None
            return first
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        self._first = None
        await self._gen.aclose()


@dataclass(slots=True)
class StreamOutcome:
    """A stream whose first content already arrived (failover before it was invisible).
    `batches` replays the peeked events, then continues, one list of events per upstream
    network read (so a relay can write each in one go); `aclose()` it to cancel."""

    deployment: Deployment
    batches: BatchIterator

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """The same stream, one event at a time."""
        try:
            async for batch in self.batches:
                for event in batch:
                    yield event
        finally:
            await self.batches.aclose()


Outcome = ChatOutcome | StreamOutcome
