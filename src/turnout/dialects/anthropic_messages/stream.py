"""Streaming: canonical stream events <-> Anthropic server-sent events.

Anthropic's stream is `message_start`, `ping`, then per content block `content_block_start`,
`content_block_delta`s and `content_block_stop` (blocks strictly one after another, indexed
0..n), then `message_delta` (stop reason, cumulative usage) and `message_stop`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from turnout.core.errors import ConnectionFailed, TurnoutError
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
from turnout.core.response import FinishReason, Usage
from turnout.dialects.anthropic_messages.errors import (
    error_body,
    error_from_wire,
    parse_error_payload,
)
from turnout.dialects.anthropic_messages.wire import (
    finish_reason_in,
    malformed,
    message_id,
    sse,
    stop_reason_out,
    usage_in,
    usage_out,
)
from turnout.dialects.base import SSEEvent

_PING = sse("ping", {"type": "ping"})
_STOP = sse("message_stop", {"type": "message_stop"})
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def _delta(index: int, kind: bytes, value: str) -> bytes:
    # Hand-assembled: this frame is by far the most frequent, so skip building a dict.
    return (_DELTA_HEAD + str(index).encode() + b',"delta":{"type":' + kind
            + orjson.dumps(value) + b"}}\n\n")


_TEXT = b'"text_delta","text":'
_JSON = b'"input_json_delta","partial_json":'
_THINKING = b'"thinking_delta","thinking":'


@dataclass(slots=True)
class _Block:
    """One canonical part on its way to becoming an Anthropic content block."""

    part: TextPart | ToolCallPart | ThinkingPart
    wire_index: int = -1
    """Anthropic's block index, given when the block becomes the open one."""
    pending: list[StreamEvent] = field(default_factory=list)
    """Deltas that arrived while another block was open (parts may interleave canonically;
    Anthropic blocks may not)."""
    ended: bool = False
    signature: str = ""

    @property
    def thinking(self) -> bool:
        """A readable thinking block (redacted thinking takes no deltas)."""
        return isinstance(self.part, ThinkingPart) and self.part.redacted is None


class AnthropicStreamEncoder:
    """Canonical events -> Anthropic SSE bytes for one response to a client."""

    def __init__(self, model: str) -> None:
        self._id = "msg_"
        self._model = model
        self._started = False
        self._usage = Usage()
        self._finish: Finish | None = None
        self._blocks: dict[int, _Block] = {}
        self._queue: list[int] = []
        """Canonical indexes not yet closed, in order of appearance; the first is open."""
        self._next_wire = 0

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, (TextDelta, ToolArgsDelta, ThinkingDelta)):
            block = self._blocks.get(event.index)
            if block is None:
                return b""  # a delta without its PartStart: nothing to attach it to
            if self._queue[0] == event.index:
                return self._delta_bytes(block, event)
            block.pending.append(event)
            return b""
        if isinstance(event, PartStart):
            out = self._preamble()
            self._blocks[event.index] = _Block(event.part)
            self._queue.append(event.index)
            if len(self._queue) == 1:
                out += self._open(self._blocks[event.index])
            return out
        if isinstance(event, PartEnd):
            ending = self._blocks.get(event.index)
            if ending is None or ending.ended:
                return b""
            ending.ended = True
            if self._queue[0] == event.index:
                return self._advance()
            return b""
        if isinstance(event, ResponseStart):
            self._id = message_id(event.id)
            self._model = event.model or self._model
        elif isinstance(event, UsageUpdate):
            self._usage.merge(event.usage)
        elif isinstance(event, Finish):
            # Held back: usage may still follow (OpenAI sends it after the finish chunk).
            self._finish = event
        return b""

    def encode_error(self, error: TurnoutError) -> bytes:
        _, body = error_body(error)
        return sse("error", body)

    def done(self) -> bytes:
        out = self._preamble()
        for block in self._blocks.values():
            block.ended = True  # a successful stream leaves nothing open
        if self._queue:
            out += self._advance()
        finish = self._finish or Finish("stop")
        reason = stop_reason_out(finish.reason)
        delta = {"stop_reason": reason,
                 "stop_sequence": finish.stop_sequence if reason == "stop_sequence" else None}
        out += sse("message_delta", {"type": "message_delta", "delta": delta,
                                     "usage": usage_out(self._usage)})
        return out + _STOP

    def _preamble(self) -> bytes:
        # Sent with the first part rather than at ResponseStart, so input usage reported
        # right after the start (as Anthropic upstreams do) is already in `message_start`.
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {"id": self._id, "type": "message", "role": "assistant",
                   "model": self._model, "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": usage_out(self._usage)}
        return sse("message_start", {"type": "message_start", "message": message}) + _PING

    def _open(self, block: _Block) -> bytes:
        block.wire_index = self._next_wire
        self._next_wire += 1
        part = block.part
        content: dict[str, Any]
        initial: StreamEvent | None = None
        if isinstance(part, TextPart):
            content = {"type": "text", "text": ""}
            initial = TextDelta(0, part.text) if part.text else None
        elif isinstance(part, ToolCallPart):
            content = {"type": "tool_use", "id": part.id, "name": part.name, "input": {}}
            initial = ToolArgsDelta(0, part.arguments) if part.arguments else None
        elif part.redacted is not None:
            content = {"type": "redacted_thinking", "data": part.redacted}
        else:
            content = {"type": "thinking", "thinking": "", "signature": ""}
            if part.text or part.signature:
                initial = ThinkingDelta(0, part.text, part.signature)
        out = sse("content_block_start", {"type": "content_block_start",
                                          "index": block.wire_index, "content_block": content})
        if initial is not None:
            out += self._delta_bytes(block, initial)
        for event in block.pending:
            out += self._delta_bytes(block, event)
        block.pending.clear()
        return out

    def _delta_bytes(self, block: _Block, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return _delta(block.wire_index, _TEXT, event.text) if event.text else b""
        if isinstance(event, ToolArgsDelta):
            return _delta(block.wire_index, _JSON, event.arguments) if event.arguments else b""
        if isinstance(event, ThinkingDelta):
            if event.signature:
                # Anthropic sends one signature_delta just before the block stops (and the
                # SDK keeps only the last one), so pieces are joined and sent at the end.
                block.signature += event.signature
            if event.text and block.thinking:
                return _delta(block.wire_index, _THINKING, event.text)
        return b""

    def _advance(self) -> bytes:
        """Close the open block if it ended, then open queued blocks in order."""
        out = b""
        while self._queue:
            block = self._blocks[self._queue[0]]
            if block.wire_index < 0:
                out += self._open(block)
            if not block.ended:
                break
            if block.signature and block.thinking:
                out += sse("content_block_delta", {
                    "type": "content_block_delta", "index": block.wire_index,
                    "delta": {"type": "signature_delta", "signature": block.signature}})
            out += sse("content_block_stop",
                       {"type": "content_block_stop", "index": block.wire_index})
            self._queue.pop(0)
        return out


class AnthropicStreamDecoder:
    """Anthropic SSE events from an upstream -> canonical events."""

    def __init__(self) -> None:
        self._started = False
        self._finished = False
        self._parts: dict[int, int | None] = {}
        """Anthropic block index -> canonical part index (None: a block type we skip)."""
        self._next_part = 0
        self._usage: dict[str, Any] = {}
        self._reason: FinishReason = "stop"
        self._stop_sequence: str | None = None

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if not event.data or self._finished:
            return []
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            raise malformed(f"stream event {event.event!r} is not JSON") from exc
        if not isinstance(payload, dict):
            raise malformed("stream event data must be a JSON object")
        kind = payload.get("type", event.event)
        if kind == "content_block_delta":
            return self._block_delta(payload)
        if kind == "error":
            error_type, message = parse_error_payload(payload)
            raise error_from_wire(error_type, message or "Anthropic stream error")
        if kind == "message_start":
            return self._message_start(payload)
        if kind == "ping" or not self._started:
            if kind in ("content_block_start", "content_block_stop", "message_delta",
                        "message_stop"):
                raise malformed(f"{kind} before message_start")
            return []  # ping, or an event type Anthropic added later: ignored as documented
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "content_block_stop":
            index = self._part_index(payload)
            return [PartEnd(index)] if index is not None else []
        if kind == "message_delta":
            return self._message_delta(payload)
        if kind == "message_stop":
            self._finished = True
            stop = self._stop_sequence if self._reason == "stop_sequence" else None
            return [Finish(self._reason, stop)]
        return []

    def close(self) -> list[StreamEvent]:
        if not self._finished:
            raise ConnectionFailed("stream ended before completion", origin="upstream")
        return []

    def _message_start(self, payload: dict[str, Any]) -> list[StreamEvent]:
        message = payload.get("message")
        if not isinstance(message, dict):
            raise malformed("message_start without a message")
        self._started = True
        msg_id, model = message.get("id"), message.get("model")
        events: list[StreamEvent] = [ResponseStart(msg_id if isinstance(msg_id, str) else "",
                                                   model if isinstance(model, str) else "")]
        return events + self._take_usage(message.get("usage"))

    def _take_usage(self, usage: Any) -> list[StreamEvent]:
        if not isinstance(usage, dict):
            return []
        # Figures are cumulative; absent or null ones keep their earlier value.
        self._usage.update((k, v) for k, v in usage.items() if v is not None)
        return [UsageUpdate(usage_in(self._usage))]

    def _block_start(self, payload: dict[str, Any]) -> list[StreamEvent]:
        wire_index = payload.get("index")
        block = payload.get("content_block")
        if not isinstance(wire_index, int) or not isinstance(block, dict):
            raise malformed("content_block_start needs an index and a content_block")
        part: TextPart | ToolCallPart | ThinkingPart
        kind = block.get("type")
        if kind == "text":
            part = TextPart(_text(block, "text"))
        elif kind == "tool_use":
            initial = block.get("input")
            # The input object is `{}` at start and streamed as JSON text after.
            part = ToolCallPart(_text(block, "id"), _text(block, "name"),
                                orjson.dumps(initial).decode() if initial else "")
        elif kind == "thinking":
            part = ThinkingPart(_text(block, "thinking"), block.get("signature") or None)
        elif kind == "redacted_thinking":
            part = ThinkingPart("", None, _text(block, "data"))
        else:
            self._parts[wire_index] = None  # server-tool blocks we never ask for
            return []
        index = self._next_part
        self._next_part += 1
        self._parts[wire_index] = index
        return [PartStart(index, part)]

    def _part_index(self, payload: dict[str, Any]) -> int | None:
        wire_index = payload.get("index")
        if not isinstance(wire_index, int) or wire_index not in self._parts:
            raise malformed(f"{payload.get('type')} for unknown block index {wire_index!r}")
        return self._parts[wire_index]

    def _block_delta(self, payload: dict[str, Any]) -> list[StreamEvent]:
        index = self._part_index(payload)
        delta = payload.get("delta")
        if index is None or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = _text(delta, "text")
            return [TextDelta(index, text)] if text else []
        if kind == "input_json_delta":
            arguments = _text(delta, "partial_json")
            return [ToolArgsDelta(index, arguments)] if arguments else []
        if kind == "thinking_delta":
            return [ThinkingDelta(index, _text(delta, "thinking"))]
        if kind == "signature_delta":
            return [ThinkingDelta(index, "", _text(delta, "signature"))]
        return []  # citations_delta and future delta types carry nothing we model

    def _message_delta(self, payload: dict[str, Any]) -> list[StreamEvent]:
        delta = payload.get("delta")
        if isinstance(delta, dict):
            if delta.get("stop_reason") is not None:
                self._reason = finish_reason_in(delta.get("stop_reason"))
            stop_sequence = delta.get("stop_sequence")
            self._stop_sequence = stop_sequence if isinstance(stop_sequence, str) else None
        return self._take_usage(payload.get("usage"))


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise malformed(f"{key} must be a string")
    return value
