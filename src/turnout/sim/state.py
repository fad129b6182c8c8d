"""The state of one simulator app: its dialect, fault queue and request log."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from turnout.dialects.base import Dialect
from turnout.sim.faults import FaultQueue

Sleep = Callable[[float], Awaitable[None]]
"""How a simulator waits (injectable, so that tests of slow faults need not sleep)."""

_ID_PREFIX = {"openai_chat": "chatcmpl-", "anthropic_messages": "msg_", "gemini": "resp-"}


@dataclass(slots=True)
class RecordedRequest:
    """One request a simulator received (control API calls excluded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    """The parsed JSON body, or None when it was empty or not JSON."""
    time: float
    """Wall-clock time of arrival (seconds since the epoch)."""
    fault: str | None = None
    """The kind of fault applied to this request, if any."""


@dataclass(eq=False)
class SimulatorState:
    """Everything one simulator app owns. Lives in the app under `SIMULATOR`; nothing global."""

    dialect_name: str
    dialect: Dialect
    name: str
    chunk_words: int = 1
    record_requests: bool = True
    api_key: str | None = None
    """When set, the only key accepted; any key is accepted otherwise."""
    models: tuple[str, ...] = ()
    """Model ids listed by the models endpoint."""
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.time
    faults: FaultQueue = field(default_factory=FaultQueue)
    requests: list[RecordedRequest] = field(default_factory=list)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the app shuts down, to release hanging requests."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_response_id(self) -> str:
        """A fresh response id in the provider's style (`chatcmpl-...`, `msg_...`)."""
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", self.name)
        return f"{_ID_PREFIX.get(self.dialect_name, '')}{stem}-{next(self._ids)}"

    def reset(self) -> None:
        """Forget queued faults and recorded requests."""
        self.faults.clear()
        self.requests.clear()


SIMULATOR = web.AppKey("turnout_simulator", SimulatorState)
"""Where a simulator app keeps its `SimulatorState`."""
