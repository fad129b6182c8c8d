"""Stream events and the one accumulator that folds a stream into a `ChatResponse`.

A stream is: `ResponseStart`, then for each part `PartStart`, deltas, `PartEnd` (parts are
indexed from 0 in order of appearance), then optional `UsageUpdate`s and one `Finish`.
Parts may interleave (parallel tool calls stream side by side in OpenAI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from turnout.core.parts import Part, TextPart, ThinkingPart, ToolCallPart
from turnout.core.response import ChatResponse, FinishReason, Usage


@dataclass(slots=True)
class ResponseStart:
    """The response's identity; always the first event."""

    id: str
    model: str
    created: int = 0


@dataclass(slots=True)
class PartStart:
    """A new part begins at `index`; `part` carries any content known at start
    (a tool call's id and name, possibly the first text)."""

    index: int
    part: TextPart | ToolCallPart | ThinkingPart


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ToolArgsDelta:
    """A piece of a tool call's JSON arguments text."""

    index: int
    arguments: str


@dataclass(slots=True)
class ThinkingDelta:
    index: int
    text: str = ""
    signature: str | None = None


@dataclass(slots=True)
class PartEnd:
    index: int


@dataclass(slots=True)
class UsageUpdate:
    """Usage so far; later updates override earlier non-zero figures."""

    usage: Usage


@dataclass(slots=True)
class Finish:
    """Generation ended; always the last event of a successful stream."""

    reason: FinishReason
    stop_sequence: str | None = None


StreamEvent = (
    ResponseStart | PartStart | TextDelta | ToolArgsDelta | ThinkingDelta | PartEnd
    | UsageUpdate | Finish
)


@dataclass(slots=True)
class StreamAccumulator:
    """Folds stream events into the `ChatResponse` a non-stream call would return."""

    response: ChatResponse = field(default_factory=lambda: ChatResponse(id="", model=""))
    _parts: dict[int, Part] = field(default_factory=dict)
    open_parts: set[int] = field(default_factory=set)
    finished: bool = False

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            part = self._parts[event.index]
            assert isinstance(part, TextPart)
            part.text += event.text
        elif isinstance(event, ToolArgsDelta):
            call = self._parts[event.index]
            assert isinstance(call, ToolCallPart)
            call.arguments += event.arguments
        elif isinstance(event, PartStart):
            self._parts[event.index] = _copy_part(event.part)
            self.open_parts.add(event.index)
        elif isinstance(event, PartEnd):
            self.open_parts.discard(event.index)
        elif isinstance(event, ThinkingDelta):
            thought = self._parts[event.index]
            assert isinstance(thought, ThinkingPart)
            thought.text += event.text
            if event.signature:
                thought.signature = (thought.signature or "") + event.signature
        elif isinstance(event, ResponseStart):
            self.response.id = event.id
            self.response.model = event.model
            self.response.created = event.created
        elif isinstance(event, UsageUpdate):
            self.response.usage.merge(event.usage)
        elif isinstance(event, Finish):
            self.response.finish_reason = event.reason
            self.response.stop_sequence = event.stop_sequence
            self.finished = True

    def result(self) -> ChatResponse:
        """The response folded so far (parts in index order)."""
        self.response.parts = [self._parts[i] for i in sorted(self._parts)]
        return self.response

    def has_open_tool_call(self) -> bool:
        """True while a tool call has started but not ended: its arguments may be truncated."""
        return any(isinstance(self._parts[i], ToolCallPart) for i in self.open_parts)


def _copy_part(part: TextPart | ToolCallPart | ThinkingPart) -> Part:
    # Copy so that folding never mutates the event a producer may still hold.
    if isinstance(part, TextPart):
        return TextPart(part.text)
    if isinstance(part, ToolCallPart):
        return ToolCallPart(part.id, part.name, part.arguments)
    return ThinkingPart(part.text, part.signature, part.redacted)


def response_to_events(response: ChatResponse) -> list[StreamEvent]:
    """Replay a complete response as stream events (for upstreams answered without streaming
    and for simulators)."""
    events: list[StreamEvent] = [ResponseStart(response.id, response.model, response.created)]
    for index, part in enumerate(response.parts):
        if isinstance(part, TextPart):
            events += [PartStart(index, TextPart("")), TextDelta(index, part.text)]
        elif isinstance(part, ToolCallPart):
            events += [PartStart(index, ToolCallPart(part.id, part.name, "")),
                       ToolArgsDelta(index, part.arguments)]
        elif isinstance(part, ThinkingPart):
            events += [PartStart(index, ThinkingPart("", None, part.redacted)),
                       ThinkingDelta(index, part.text, part.signature)]
        else:
            continue
        events.append(PartEnd(index))
    events.append(UsageUpdate(response.usage))
    events.append(Finish(response.finish_reason or "stop", response.stop_sequence))
    return events
