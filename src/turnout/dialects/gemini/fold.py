"""Gemini wire parts -> canonical stream events, with one set of rules for every reader.

A non-stream response, each chunk of a stream and each model turn of a request all go
through `PartFolder`, so the same wire parts always give the same canonical parts however
they arrive:

- consecutive plain text parts form one `TextPart` (Gemini splits text freely across chunks);
- consecutive thought parts form one `ThinkingPart` until a part brings its signature;
- a signature on a text or function-call part becomes a signature carrier (an empty
  `ThinkingPart` holding it) right before that part (see `parts.py`);
- each `functionCall` is one whole `ToolCallPart` (Gemini never streams arguments in pieces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from turnout.core.events import (
    PartEnd,
    PartStart,
    StreamAccumulator,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from turnout.core.parts import Part, TextPart, ThinkingPart, ToolCallPart
from turnout.dialects.gemini._wire import ErrorFactory, boolean, data, message, string
from turnout.dialects.gemini.parts import args_json

CallIdIn = Callable[[str | None], str]
"""Wire `functionCall.id` (None when Gemini gave none) -> canonical tool-call id."""


@dataclass(slots=True)
class _Open:
    index: int
    kind: Literal["text", "thinking"]
    signed: bool = False


class PartFolder:
    """Turns wire parts into part events, keeping at most one text or thinking part open."""

    def __init__(self, call_id: CallIdIn, err: ErrorFactory) -> None:
        self._call_id = call_id
        self._err = err
        self._next_index = 0
        self._open: _Open | None = None
        self.has_tool_calls = False
        """Whether any function call was seen (a `STOP` then means `tool_calls`)."""

    def feed(self, parts: list[Any], param: str) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for i, raw in enumerate(parts):
            self._part(message(raw, f"{param}.{i}", self._err), f"{param}.{i}", events)
        return events

    def close(self) -> list[StreamEvent]:
        """End the open text or thinking part, if any."""
        if self._open is None:
            return []
        index, self._open = self._open.index, None
        return [PartEnd(index)]

    def _new_index(self) -> int:
        index, self._next_index = self._next_index, self._next_index + 1
        return index

    def _part(self, part: dict[str, Any], param: str, events: list[StreamEvent]) -> None:
        err = self._err
        signature = part.get("thoughtSignature")
        if signature is not None:
            signature = string(signature, f"{param}.thoughtSignature", err) or None
        thought = boolean(part.get("thought", False), f"{param}.thought", err)
        if "functionCall" in part:
            self._function_call(part["functionCall"], signature, f"{param}.functionCall",
                                events)
        elif "text" in part or set(part) <= {"thought", "thoughtSignature"}:
            text = string(part.get("text", ""), f"{param}.text", err)
            if thought:
                self._thought(text, signature, events)
            else:
                self._text(text, signature, events)
        else:
            kinds = ", ".join(sorted(k for k in part if k not in ("thought", "thoughtSignature")))
            raise err(f"unsupported part ({kinds})", param)

    def _function_call(
        self, raw: Any, signature: str | None, param: str, events: list[StreamEvent]
    ) -> None:
        call = message(raw, param, self._err)
        name = string(call.get("name"), f"{param}.name", self._err)
        args = call.get("args")
        args = {} if args is None else data(args, f"{param}.args", self._err)
        if "partialArgs" in call or call.get("willContinue"):
            raise self._err("streamed function call arguments are not supported", param)
        wire_id = call.get("id")
        if wire_id is not None:
            wire_id = string(wire_id, f"{param}.id", self._err) or None
        events += self.close()
        if signature:
            self._carrier(signature, events)
        index = self._new_index()
        events += [PartStart(index, ToolCallPart(self._call_id(wire_id), name, "")),
                   ToolArgsDelta(index, args_json(args)), PartEnd(index)]
        self.has_tool_calls = True

    def _thought(self, text: str, signature: str | None, events: list[StreamEvent]) -> None:
        current = self._open
        if current is not None and current.kind == "thinking" and not current.signed:
            if text or signature:
                events.append(ThinkingDelta(current.index, text, signature))
            current.signed = bool(signature)
            return
        if not text and not signature:
            return
        events += self.close()
        index = self._new_index()
        events += [PartStart(index, ThinkingPart("")), ThinkingDelta(index, text, signature)]
        self._open = _Open(index, "thinking", signed=bool(signature))

    def _text(self, text: str, signature: str | None, events: list[StreamEvent]) -> None:
        if signature:
            events += self.close()
            self._carrier(signature, events)
        elif not text:
            return
        elif self._open is not None and self._open.kind == "text":
            events.append(TextDelta(self._open.index, text))
            return
        else:
            events += self.close()
        if text:
            index = self._new_index()
            events += [PartStart(index, TextPart("")), TextDelta(index, text)]
            self._open = _Open(index, "text")

    def _carrier(self, signature: str, events: list[StreamEvent]) -> None:
        index = self._new_index()
        events += [PartStart(index, ThinkingPart("")), ThinkingDelta(index, "", signature),
                   PartEnd(index)]


def fold_parts(parts: list[Any], param: str, call_id: CallIdIn, err: ErrorFactory) -> list[Part]:
    """The canonical parts of one model turn."""
    folder = PartFolder(call_id, err)
    accumulator = StreamAccumulator()
    for event in folder.feed(parts, param) + folder.close():
        accumulator.add(event)
    return accumulator.result().parts
