"""Streams: canonical events into `chat.completion.chunk` SSE lines, and back."""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import ConnectionFailed, MalformedResponse, TurnoutError
from turnout.core.events import (
    Finish,
    PartEnd,
    PartStart,
    ResponseStart,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UsageUpdate,
)
from turnout.core.parts import TextPart, ThinkingPart, ToolCallPart
from turnout.core.response import Usage
from turnout.dialects.base import SSEEvent
from turnout.dialects.openai_chat.errors import error_from_payload, error_object
from turnout.dialects.openai_chat.response import (
    FINISH_TO_WIRE,
    decode_usage,
    encode_usage,
    finish_from_wire,
)

_DONE = b"data: [DONE]\n\n"
_OPEN_SUFFIX = b',"logprobs":null,"finish_reason":null}]}\n\n'


class ChatStreamEncoder:
    """Canonical events -> SSE chunk bytes for an OpenAI client.

    Every chunk shares its head (`id`, `object`, `created`, `model`) and choice wrapper, so
    both are serialised once per stream and each delta costs one small `orjson.dumps`.
    """

    __slots__ = ("_created", "_head", "_include_usage", "_next_tool", "_prefix", "_started",
                 "_tools", "_usage")

    def __init__(self, model: str, include_usage: bool, created: int) -> None:
        self._include_usage = include_usage
        self._created = created
        self._tools: dict[int, bytes] = {}  # canonical part index -> b"<n>" (n-th tool call)
        self._next_tool = 0
        self._usage = Usage()
        self._started = False
        self._head = b""
        self._prefix = b""
        self._set_head("", model, created)

    def _set_head(self, id_: str, model: str, created: int) -> None:
        self._head = (b'{"id":' + orjson.dumps(id_) + b',"object":"chat.completion.chunk",'
                      b'"created":' + str(created).encode() + b',"model":'
                      + orjson.dumps(model) + b",")
        self._prefix = b"data: " + self._head + b'"choices":[{"index":0,"delta":'

    def encode(self, event: StreamEvent) -> bytes:
        """SSE bytes for one event (empty for events with no wire form)."""
        if isinstance(event, TextDelta):
            return self._delta(b'{"content":' + orjson.dumps(event.text) + b"}") \
                if event.text else b""
        if isinstance(event, ToolArgsDelta):
            return self._args(self._tools[event.index], event.arguments) \
                if event.arguments else b""
        if isinstance(event, ThinkingDelta):
            return self._thinking(event.text)
        if isinstance(event, PartStart):
            return self._part_start(event.index, event.part)
        if isinstance(event, ResponseStart):
            self._started = True
            self._set_head(event.id, event.model, event.created or self._created)
            return self._delta(b'{"role":"assistant","content":""}')
        if isinstance(event, UsageUpdate):
            self._usage.merge(event.usage)
            return b""
        if isinstance(event, Finish):
            reason = FINISH_TO_WIRE[event.reason].encode()
            return (self._prefix + b'{},"logprobs":null,"finish_reason":"' + reason
                    + b'"}]}\n\n')
        return b""  # PartEnd: Chat Completions has no part boundaries

    def _delta(self, delta: bytes) -> bytes:
        return self._prefix + delta + _OPEN_SUFFIX

    def _args(self, tool: bytes, arguments: str) -> bytes:
        return self._delta(b'{"tool_calls":[{"index":' + tool + b',"function":{"arguments":'
                           + orjson.dumps(arguments) + b"}}]}")

    def _thinking(self, text: str) -> bytes:
        # Non-standard `reasoning_content`, as vLLM and DeepSeek stream it; the SDK keeps it.
        return self._delta(b'{"reasoning_content":' + orjson.dumps(text) + b"}") if text else b""

    def _part_start(self, index: int, part: TextPart | ToolCallPart | ThinkingPart) -> bytes:
        if isinstance(part, ToolCallPart):
            tool = str(self._next_tool).encode()
            self._next_tool += 1
            self._tools[index] = tool
            call = {"index": self._next_tool - 1, "id": part.id, "type": "function",
                    "function": {"name": part.name, "arguments": part.arguments}}
            return self._delta(orjson.dumps({"tool_calls": [call]}))
        if isinstance(part, TextPart):
            return self._delta(b'{"content":' + orjson.dumps(part.text) + b"}") \
                if part.text else b""
        return self._thinking(part.text)

    def encode_error(self, error: TurnoutError) -> bytes:
        """A terminal `data: {"error": {...}}` event (what the OpenAI SDK raises on)."""
        return b"data: " + orjson.dumps(error_object(error)) + b"\n\n"

    def done(self) -> bytes:
        """The usage chunk (when the client asked for it), then `data: [DONE]`."""
        if not (self._include_usage and self._started):
            return _DONE
        usage = orjson.dumps(encode_usage(self._usage))
        return b"data: " + self._head + b'"choices":[],"usage":' + usage + b"}\n\n" + _DONE


class ChatStreamDecoder:
    """A provider's chunk stream -> canonical events.

    Text and reasoning are sequential parts: each ends when another kind of part begins
    (and a later resumption opens a new part). Tool calls, keyed by their wire `index`,
    may interleave and stay open until the finish chunk.
    """

    __slots__ = ("_done", "_finished", "_next", "_open", "_refused", "_started", "_text",
                 "_thinking", "_tools")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._finished = False
        self._refused = False
        self._next = 0
        self._open: list[int] = []
        self._text: int | None = None
        self._thinking: int | None = None
        self._tools: dict[int, int] = {}  # wire tool index -> canonical part index

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data.strip()
        if not data or self._done:
            return []
        if data == b"[DONE]":
            return self._on_done()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _malformed("a stream event is not JSON") from None
        if not isinstance(chunk, dict):
            raise _malformed("a stream event is not a JSON object")
        if chunk.get("error") is not None or chunk.get("object") == "error":
            raise error_from_payload(chunk, None, data)
        choices = chunk.get("choices")
        if choices is not None and not isinstance(choices, list):
            raise _malformed("'choices' is not an array")
        events: list[StreamEvent] = []
        if not self._started:
            if not choices and chunk.get("usage") is None:
                # Azure opens with a prompt-filter chunk that has no id, model or choices.
                return events
            self._started = True
            events.append(ResponseStart(_str(chunk.get("id")), _str(chunk.get("model")),
                                        _int(chunk.get("created"))))
        finish: list[StreamEvent] = []
        for choice in choices or ():
            if not isinstance(choice, dict):
                raise _malformed("a choice is not an object")
            if choice.get("index", 0) == 0 and not self._finished:
                finish = self._choice(choice, events)
        if chunk.get("usage") is not None:
            events.append(UsageUpdate(decode_usage(chunk["usage"])))
        events.extend(finish)
        return events

    def close(self) -> list[StreamEvent]:
        """End of input: a stream with neither `[DONE]` nor a finish reason was cut."""
        if self._done or self._finished:
            return []
        raise ConnectionFailed("stream ended before completion", origin="upstream")

    def _on_done(self) -> list[StreamEvent]:
        self._done = True
        if self._finished:
            return []
        if not self._started:
            raise _malformed("the stream ended without a single chunk")
        # `[DONE]` is a terminal marker: some servers omit the finish reason before it.
        return self._end_all("stop", None)

    def _choice(self, choice: dict[str, Any], events: list[StreamEvent]) -> list[StreamEvent]:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, events)
        elif delta is not None:
            raise _malformed("'delta' is not an object")
        reason = choice.get("finish_reason")
        if reason is None:
            return []
        if not isinstance(reason, str):
            raise _malformed("'finish_reason' is not a string")
        return self._end_all(reason, choice.get("stop_reason"))

    def _end_all(self, reason: str, stop_reason: Any) -> list[StreamEvent]:
        self._finished = True
        finish, stop_sequence = finish_from_wire(reason, stop_reason)
        if self._refused:
            finish = "content_filter"
        ends: list[StreamEvent] = [PartEnd(i) for i in self._open]
        self._open.clear()
        return [*ends, Finish(finish, stop_sequence)]

    def _delta(self, delta: dict[str, Any], events: list[StreamEvent]) -> None:
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought:
            if not isinstance(thought, str):
                raise _malformed("'reasoning_content' is not a string")
            if self._thinking is None:
                self._thinking = self._start(ThinkingPart(""), events)
            events.append(ThinkingDelta(self._thinking, thought))
        for key in ("content", "refusal"):
            text = delta.get(key)
            if text is None or text == "":
                continue
            if not isinstance(text, str):
                raise _malformed(f"'delta.{key}' is not a string")
            self._refused = self._refused or key == "refusal"
            if self._text is None:
                self._text = self._start(TextPart(""), events)
            events.append(TextDelta(self._text, text))
        calls = delta.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                raise _malformed("'delta.tool_calls' is not an array")
            for position, call in enumerate(calls):
                self._tool_delta(call, position, events)

    def _tool_delta(self, call: Any, position: int, events: list[StreamEvent]) -> None:
        if not isinstance(call, dict):
            raise _malformed("a tool call delta is not an object")
        wire_index = call.get("index", position)
        function = call.get("function") or {}
        if not isinstance(wire_index, int) or not isinstance(function, dict):
            raise _malformed("a tool call delta has a bad 'index' or 'function'")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a few local servers send the object itself
            arguments = orjson.dumps(arguments).decode()
        elif arguments is not None and not isinstance(arguments, str):
            raise _malformed("tool call 'arguments' is not a string")
        index = self._tools.get(wire_index)
        if index is None:
            part = ToolCallPart(_str(call.get("id")), _str(function.get("name")), "")
            index = self._tools[wire_index] = self._start(part, events)
        if arguments:
            events.append(ToolArgsDelta(index, arguments))

    def _start(self, part: TextPart | ToolCallPart | ThinkingPart,
               events: list[StreamEvent]) -> int:
        # A new part ends the open text/reasoning part of another kind (see class docs).
        for attr in ("_text", "_thinking"):
            current = getattr(self, attr)
            if current is not None and not _same_kind(part, attr):
                events.append(PartEnd(current))
                self._open.remove(current)
                setattr(self, attr, None)
        index = self._next
        self._next += 1
        self._open.append(index)
        events.append(PartStart(index, part))
        return index


def _same_kind(part: TextPart | ToolCallPart | ThinkingPart, attr: str) -> bool:
    return isinstance(part, TextPart) if attr == "_text" else isinstance(part, ThinkingPart)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _malformed(reason: str) -> MalformedResponse:
    return MalformedResponse(f"invalid chat completion stream from upstream: {reason}",
                             origin="upstream")
