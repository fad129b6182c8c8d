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
    `events` replays the peeked events, then continues; `aclose()` it to cancel."""

    deployment: Deployment
    events: AsyncGenerator[StreamEvent, None]


Outcome = ChatOutcome | StreamOutcome
