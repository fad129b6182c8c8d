"""Gemini streams (`:streamGenerateContent?alt=sse`), both directions.

Every SSE event is `data: <GenerateContentResponse>`: a complete response object holding the
parts produced since the previous one. There is no start event and no terminal marker: the
chunk that carries `finishReason` (and the final `usageMetadata`) is the last one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from turnout.core.errors import (
    ConnectionFailed,
    ContentFiltered,
    MalformedResponse,
    TurnoutError,
)
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
from turnout.core.request import ChatRequest
from turnout.core.response import FinishReason, Usage
from turnout.dialects.base import SSEEvent
from turnout.dialects.gemini._wire import (
    arr,
    finish_reason_in,
    finish_reason_out,
    issued_id_in,
    message,
    sse,
    string,
    usage_in,
    usage_out,
    verbatim_id,
)
from turnout.dialects.gemini.errors import error_body, error_from_payload
from turnout.dialects.gemini.fold import PartFolder
from turnout.dialects.gemini.parts import function_call_out, signature_part, thought_part

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def malformed(message: str, param: str | None = None) -> TurnoutError:
    """Error factory for upstream bodies that are not valid Gemini responses."""
    where = f" at `{param}`" if param else ""
    return MalformedResponse(f"invalid Gemini response{where}: {message}", origin="upstream")


def _random_token() -> str:
    return uuid.uuid4().hex[:16]


# --- upstream -> canonical ----------------------------------------------------------------------

class GeminiStreamDecoder:
    """Canonical events from Gemini response chunks. Also folds a non-stream response, which
    is a single chunk (`feed_payload` then `finish_complete`)."""

    def __init__(self, new_token: Callable[[], str] = _random_token) -> None:
        self._new_token = new_token
        self._started = False
        self._finished = False
        self._prefix = ""
        self._calls = 0
        self._folder = PartFolder(self._call_id, malformed)

    def _call_id(self, wire_id: str | None) -> str:
        # Ids Gemini issued are marked so that only they go back upstream; missing ones are
        # made unique per response and stable (stream and non-stream give the same ids).
        if wire_id is not None:
            return issued_id_in(wire_id)
        self._calls += 1
        return f"call_{self._prefix}_{self._calls - 1}"

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data.strip()
        if not data:
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise malformed("stream event is not JSON") from exc
        return self.feed_payload(message(payload, "", malformed))

    def feed_payload(self, payload: dict[str, Any]) -> list[StreamEvent]:
        if "error" in payload:
            raise error_from_payload(payload["error"], status=None, headers={})
        if self._finished:
            # Nothing may follow `Finish`; Gemini sends nothing after the finishing chunk.
            return []
        events: list[StreamEvent] = []
        if not self._started:
            events.append(self._start(payload))
        candidates = payload.get("candidates")
        candidate: dict[str, Any] = {}
        if candidates:
            candidate = message(arr(candidates, "candidates", malformed)[0], "candidates.0",
                                malformed)
        else:
            raise_if_blocked(payload.get("promptFeedback"))
        content = candidate.get("content")
        if content is not None:
            parts = message(content, "candidates.0.content", malformed).get("parts")
            if parts is not None:
                events += self._folder.feed(
                    arr(parts, "candidates.0.content.parts", malformed),
                    "candidates.0.content.parts")
        usage = payload.get("usageMetadata")
        usage_events: list[StreamEvent] = []
        if usage is not None:
            usage_events.append(
                UsageUpdate(usage_in(message(usage, "usageMetadata", malformed))))
        reason = candidate.get("finishReason")
        if reason is None:
            return events + usage_events
        reason = string(reason, "candidates.0.finishReason", malformed)
        self._finished = True
        return events + self._folder.close() + usage_events + [
            Finish(finish_reason_in(reason, has_tool_calls=self._folder.has_tool_calls))]

    def _start(self, payload: dict[str, Any]) -> ResponseStart:
        self._started = True
        response_id = payload.get("responseId")
        if not isinstance(response_id, str) or not response_id:
            response_id = self._new_token()
        self._prefix = _UNSAFE_ID_CHARS.sub("_", response_id)
        model = payload.get("modelVersion")
        return ResponseStart(response_id, model if isinstance(model, str) else "")

    def close(self) -> list[StreamEvent]:
        if not self._finished:
            raise ConnectionFailed("Gemini stream ended before a chunk with finishReason",
                                   origin="upstream")
        return []

    def finish_complete(self) -> list[StreamEvent]:
        """End a non-stream response: its HTTP body is complete even without a finishReason."""
        if self._finished:
            return []
        self._finished = True
        reason: FinishReason = "tool_calls" if self._folder.has_tool_calls else "stop"
        return [*self._folder.close(), Finish(reason)]


def raise_if_blocked(feedback: Any) -> None:
    """Raise `ContentFiltered` when `promptFeedback` says the prompt was blocked."""
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        detail = feedback.get("blockReasonMessage")
        message = f"Gemini blocked the prompt ({feedback['blockReason']})"
        raise ContentFiltered(f"{message}: {detail}" if isinstance(detail, str) else message,
                              origin="upstream")


# --- canonical -> client ------------------------------------------------------------------------

@dataclass(slots=True)
class _PartState:
    part: TextPart | ThinkingPart | ToolCallPart
    args: list[str] = field(default_factory=list)
    emitted: bool = False
    signature: str = ""


class GeminiStreamEncoder:
    """Gemini SSE chunks for canonical events: one chunk per text or thought delta, one per
    function call (sent whole when its part ends), and a last chunk with `finishReason` and
    `usageMetadata`."""

    def __init__(self, request: ChatRequest) -> None:
        self._id = ""
        self._model = request.model
        self._parts: dict[int, _PartState] = {}
        self._pending: str | None = None
        """A signature carrier waiting for the next text or function-call part."""
        self._usage = Usage()

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._text(event.text)
        if isinstance(event, ThinkingDelta):
            return self._thinking(self._parts[event.index], event.text, event.signature)
        if isinstance(event, ToolArgsDelta):
            self._parts[event.index].args.append(event.arguments)
            return b""
        if isinstance(event, PartStart):
            return self._start(event)
        if isinstance(event, PartEnd):
            return self._end(self._parts.pop(event.index, None))
        if isinstance(event, ResponseStart):
            self._id = event.id
            self._model = event.model or self._model
            return b""
        if isinstance(event, UsageUpdate):
            self._usage.merge(event.usage)
            return b""
        # Like Gemini, the last chunk always has content (clients index into it), with an
        # empty text part when nothing is left to send.
        parts = [signature_part(self._pending)] if self._pending else [{"text": ""}]
        self._pending = None
        return self._chunk(parts, finish=finish_reason_out(event.reason))

    def encode_error(self, error: TurnoutError) -> bytes:
        return sse(error_body(error)[1])

    def done(self) -> bytes:
        return b""

    def _start(self, event: PartStart) -> bytes:
        part = event.part
        state = _PartState(part)
        self._parts[event.index] = state
        if isinstance(part, TextPart):
            return self._text(part.text)
        if isinstance(part, ThinkingPart):
            return self._thinking(state, part.text, part.signature)
        state.args.append(part.arguments)
        return b""

    def _text(self, text: str) -> bytes:
        if not text:
            return b""
        wire: dict[str, Any] = {"text": text}
        if self._pending:
            wire["thoughtSignature"], self._pending = self._pending, None
        return self._chunk([wire])

    def _thinking(self, state: _PartState, text: str, signature: str | None) -> bytes:
        if text:
            parts = []
            if self._pending and not state.emitted:
                parts.append(signature_part(self._pending))
                self._pending = None
            parts.append(thought_part(text, (state.signature + (signature or "")) or None))
            state.signature, state.emitted = "", True
            return self._chunk(parts)
        if signature:
            if state.emitted:
                return self._chunk([thought_part("", signature)])
            state.signature += signature
        return b""

    def _end(self, state: _PartState | None) -> bytes:
        if state is None:
            return b""
        if isinstance(state.part, ToolCallPart):
            call = ToolCallPart(state.part.id, state.part.name, "".join(state.args))
            wire = function_call_out(call, verbatim_id, "arguments", malformed)
            if self._pending:
                wire["thoughtSignature"], self._pending = self._pending, None
            return self._chunk([wire])
        if isinstance(state.part, ThinkingPart) and state.signature and not state.emitted:
            # A signature carrier: it rides on the next part, like in a non-stream answer.
            flushed = self._chunk([signature_part(self._pending)]) if self._pending else b""
            self._pending = state.signature
            return flushed
        return b""

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {}
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        payload: dict[str, Any] = {"candidates": [candidate]}
        if finish is not None:
            payload["usageMetadata"] = usage_out(self._usage)
        payload["modelVersion"] = self._model
        payload["responseId"] = self._id
        return sse(payload)
