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
    ToolArgsDelta,
)
from turnout.core.parts import TextPart
from turnout.core.request import ChatRequest, Message
from turnout.engine.upstream import UpstreamStream

# Events before these carry no content: failing over after them is invisible to the client.
_CONTENT = (PartStart, TextDelta, ToolArgsDelta, Finish)


@dataclass(slots=True)
class PeekedStream:
    """An upstream stream whose first content event has arrived."""

    upstream: UpstreamStream
    events: AsyncIterator[StreamEvent]
    buffered: list[StreamEvent] = field(default_factory=list)
    ttft_s: float = 0.0
    started: float = 0.0
    """When the attempt began (clock seconds), for the stream's total latency."""


async def peek(upstream: UpstreamStream, now: Callable[[], float]) -> PeekedStream:
    """Read until the first content event (bounded by the stream's first-chunk timeout).
    Any error here is raised so the executor may fail over before the client sees a byte."""
    started = now()
    events = upstream.events()
    buffered: list[StreamEvent] = []
    try:
        async for event in events:
            buffered.append(event)
            if isinstance(event, _CONTENT):
                return PeekedStream(upstream, events, buffered, now() - started, started)
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    # Ended cleanly with no content at all: the decoder accepted an empty stream.
    return PeekedStream(upstream, events, buffered, now() - started, started)


Continue = Callable[[ChatRequest, TurnoutError], Awaitable[PeekedStream | None]]
Done = Callable[[PeekedStream, TurnoutError | None], None]
"""Reports how a relayed upstream stream ended: None for success; `ClientClosed` when the
client went away (the relay was closed before the end)."""


async def relay(
    peeked: PeekedStream, request: ChatRequest, *,
    on_done: Done,
    continue_on: Continue | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """Yield the peeked events and the rest of the stream. A failure after the first byte
    ends with the error (the gateway turns it into the dialect's error event), unless
    `continue_on` is given: then a fallback continues from the partial text, which the
    client never sees twice. A stream that had begun a tool call is never continued: its
    arguments could not be resumed without duplicating or truncating them."""
    folded = StreamAccumulator()
    current = peeked
    while True:
        reported = False
        try:
            for event in current.buffered:
                folded.add(event)
                yield event
            current.buffered = []
            async for event in current.events:
                folded.add(event)
                yield event
            reported = True
            on_done(current, None)
            return
        except TurnoutError as error:
            reported = True
            on_done(current, error)
            if continue_on is None or folded.result().tool_calls() or folded.finished:
                raise
            follow = await continue_on(_continuation(request, folded), error)
            if follow is None:
                raise
            current = _strip_prefix(follow, folded)
        finally:
            if not reported:  # cancelled or closed early: the client went away
                on_done(current, ClientClosed("client closed the stream"))
            current.upstream.close()


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

    async def events() -> AsyncIterator[StreamEvent]:
        pending = folded.result().text()
        async for event in _chain(follow.buffered, follow.events):
            if isinstance(event, ResponseStart):
                continue
            if isinstance(event, PartStart):
                if not isinstance(event.part, TextPart):
                    raise MalformedResponse("the continuation answered with something other "
                                            "than text", origin="upstream")
                if start_text:
                    yield PartStart(text_index, TextPart(""))
                continue
            if isinstance(event, TextDelta):
                text = event.text
                if pending:
                    overlap = _common_prefix(pending, text)
                    pending = pending[overlap:] if overlap == len(text) else ""
                    text = text[overlap:]
                if text:
                    yield TextDelta(text_index, text)
            elif isinstance(event, PartEnd):
                yield PartEnd(text_index)
            else:
                yield event

    return PeekedStream(follow.upstream, events(), [], follow.ttft_s, follow.started)


async def _chain(first: list[StreamEvent], rest: AsyncIterator[StreamEvent]
                 ) -> AsyncIterator[StreamEvent]:
    for event in first:
        yield event
    async for event in rest:
        yield event


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
