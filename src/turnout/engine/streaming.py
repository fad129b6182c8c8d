"""Streams: peek the first content before committing, then relay (or continue) the rest."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from turnout.core.errors import ClientClosed, MalformedResponse, TurnoutError
from turnout.core.events import (
    Finish,
    PartEnd,
    PartStart,
    ResponseStart,
    StreamAccumulator,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from turnout.core.parts import TextPart, ToolCallPart
from turnout.core.request import ChatRequest, Message
from turnout.engine.upstream import UpstreamStream


def carries_content(event: StreamEvent) -> bool:
    """Whether a client could see something of `event`: text, a tool call, thinking, or the
    end of the answer. Upstreams open streams with events that carry nothing (a start, usage,
    an empty text or thinking block, a bare thought signature); failing over after only
    those is invisible to the client, so they never commit a stream."""
    if isinstance(event, TextDelta | ThinkingDelta):
        return bool(event.text)
    if isinstance(event, PartStart):
        part = event.part
        if isinstance(part, TextPart):
            return bool(part.text)
        # A signature alone is not content: it belongs to a part that is still to come.
        return isinstance(part, ToolCallPart) or bool(part.text or part.redacted)
    return isinstance(event, ToolArgsDelta | Finish)


Batch = list[StreamEvent]
"""The events one network read brought: relayed to the client in one write."""


@dataclass(slots=True)
class PeekedStream:
    """An upstream stream whose first content event has arrived."""

    upstream: UpstreamStream
    batches: AsyncIterator[Batch]
    buffered: Batch = field(default_factory=list)
    ttft_s: float = 0.0
    started: float = 0.0
    """When the attempt began (clock seconds), for the stream's total latency."""


async def peek(upstream: UpstreamStream, now: Callable[[], float]) -> PeekedStream:
    """Read until the first event that `carries_content` (bounded by the stream's first-chunk
    timeout), holding back every event before it: they are relayed, in order, with it. Any
    error here is raised so the executor may fail over before the client sees a byte."""
    started = now()
    batches = upstream.batches()
    buffered: Batch = []
    try:
        async for batch in batches:
            buffered += batch
            if any(carries_content(event) for event in batch):
                return PeekedStream(upstream, batches, buffered, now() - started, started)
    except BaseException:
        await batches.aclose()  # type: ignore[attr-defined]
        raise
    # Ended cleanly with no content at all: the decoder accepted an empty stream.
    return PeekedStream(upstream, batches, buffered, now() - started, started)


Continue = Callable[[ChatRequest, TurnoutError], Awaitable[PeekedStream | None]]
Done = Callable[[PeekedStream, TurnoutError | None], None]
"""Reports how a relayed upstream stream ended: None for success; `ClientClosed` when the
client went away (the relay was closed before the end)."""


async def relay(
    peeked: PeekedStream, request: ChatRequest, *,
    on_done: Done,
    continue_on: Continue | None = None,
) -> AsyncGenerator[Batch, None]:
    """Yield the peeked events and the rest of the stream, a batch per network read. A
    failure after the first byte ends with the error (the gateway turns it into the
    dialect's error event), unless `continue_on` is given: then a fallback continues from
    the partial text, which the client never sees twice. A stream that had begun a tool
    call is never continued: its arguments could not be resumed without duplicating or
    truncating them."""
    # Folding costs a little per event: only a continuation needs to know what was sent.
    folded = StreamAccumulator() if continue_on is not None else None
    current = peeked
    while True:
        reported = False
        following: PeekedStream | None = None
        try:
            if current.buffered:
                if folded is not None:
                    _fold(folded, current.buffered)
                yield current.buffered
                current.buffered = []
            async for batch in current.batches:
                if folded is not None:
                    _fold(folded, batch)
                yield batch
            reported = True
            on_done(current, None)
            return
        except TurnoutError as error:
            reported = True
            on_done(current, error)
            if (continue_on is None or folded is None or folded.result().tool_calls()
                    or folded.finished):
                raise
            follow = await continue_on(_continuation(request, folded), error)
            if follow is None:
                raise
            following = _strip_prefix(follow, folded)
        finally:
            if not reported:  # cancelled or closed early: the client went away
                on_done(current, ClientClosed("client closed the stream"))
            current.upstream.close()  # the cut stream's, never the continuation's
        assert following is not None  # the `try` returns or raises on every other path
        current = following


def _fold(folded: StreamAccumulator, batch: Batch) -> None:
    for event in batch:
        folded.add(event)


def _continuation(request: ChatRequest, folded: StreamAccumulator) -> ChatRequest:
    """The original request with the partial answer as an assistant prefix to continue."""
    text = folded.result().text()
    messages = [*request.messages, Message("assistant", [TextPart(text)])] if text else list(
        request.messages)
    clone = ChatRequest(**{f: getattr(request, f) for f in ChatRequest.__dataclass_fields__})
    clone.messages = messages
    return clone


def _strip_prefix(follow: PeekedStream, folded: StreamAccumulator) -> PeekedStream:
    """Fold the continuation into the client's open text part: drop its stream start, and
    any text that repeats what the client already has (providers without assistant prefill
    restart their answer from the beginning)."""
    parts = folded.result().parts
    text_index = next((i for i, p in enumerate(parts) if isinstance(p, TextPart)), len(parts))
    start_text = text_index == len(parts)

    async def batches() -> AsyncIterator[Batch]:
        dedupe = _RestartFilter(folded.result().text())
        async for batch in _chain(follow.buffered, follow.batches):
            out: Batch = []
            for event in batch:
                if isinstance(event, ResponseStart):
                    continue
                if isinstance(event, PartStart):
                    if not isinstance(event.part, TextPart):
                        raise MalformedResponse("the continuation answered with something "
                                                "other than text", origin="upstream")
                    if start_text:
                        out.append(PartStart(text_index, TextPart("")))
                    continue
                if isinstance(event, TextDelta):
                    text = dedupe.feed(event.text)
                    if text:
                        out.append(TextDelta(text_index, text))
                    continue
                held = dedupe.flush()
                if held:
                    out.append(TextDelta(text_index, held))
                out.append(PartEnd(text_index) if isinstance(event, PartEnd) else event)
            if out:
                yield out

    return PeekedStream(follow.upstream, batches(), [], follow.ttft_s, follow.started)


async def _chain(first: Batch, rest: AsyncIterator[Batch]) -> AsyncIterator[Batch]:
    if first:
        yield first
    async for batch in rest:
        yield batch


class _RestartFilter:
    """Drops a continuation's text when it merely restarts the answer from the beginning
    (providers without assistant prefill do), and passes a true continuation unchanged.
    Text is held back only while it still matches the start of what was already sent."""

    def __init__(self, already: str) -> None:
        self._already = already
        self._held = ""
        self._deciding = bool(already)

    def feed(self, text: str) -> str:
        if not self._deciding:
            return text
        self._held += text
        if len(self._held) >= len(self._already):
            self._deciding = False
            held, self._held = self._held, ""
            return held[len(self._already):] if held.startswith(self._already) else held
        if not self._already.startswith(self._held):
            return self.flush()
        return ""

    def flush(self) -> str:
        self._deciding = False
        held, self._held = self._held, ""
        return held
