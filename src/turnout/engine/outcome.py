"""What the engine hands back: the answer and which deployment produced it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from turnout.core.events import StreamEvent
from turnout.core.response import ChatResponse
from turnout.providers.types import Deployment


@dataclass(slots=True)
class ChatOutcome:
    """A complete answer."""

    deployment: Deployment
    response: ChatResponse


@dataclass(slots=True)
class StreamOutcome:
    """A stream whose first content already arrived (failover before it was invisible).
    `batches` replays the peeked events, then continues, one list of events per upstream
    network read (so a relay can write each in one go); `aclose()` it to cancel."""

    deployment: Deployment
    batches: AsyncGenerator[list[StreamEvent], None]

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """The same stream, one event at a time."""
        try:
            async for batch in self.batches:
                for event in batch:
                    yield event
        finally:
            await self.batches.aclose()


Outcome = ChatOutcome | StreamOutcome
