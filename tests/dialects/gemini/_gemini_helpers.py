"""Shared helpers for the Gemini dialect tests: strict validation of what we produce against
the official `google-genai` SDK types, and SSE framing. Imported as a module by the tests."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.genai import types

from turnout.core.events import StreamAccumulator, StreamEvent
from turnout.core.response import ChatResponse
from turnout.dialects.base import SSEEvent

SIG_A = base64.b64encode(b"signature-a").decode()
SIG_B = base64.b64encode(b"signature-b").decode()
PNG = "data:image/png;base64,iVBORw0KGgo="


def sdk_response(payload: dict[str, Any]) -> types.GenerateContentResponse:
    """Validate a response (or stream chunk) with the SDK's model: unknown fields are
    rejected (`extra="forbid"`) and bytes fields must be base64, as on the wire."""
    return types.GenerateContentResponse.model_validate_json(orjson.dumps(payload))


def sse_payloads(data: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of Gemini-style SSE bytes (`data: ...` + CRLF CRLF per event)."""
    assert data.endswith(b"\r\n\r\n") or not data
    out = []
    for event in data.split(b"\r\n\r\n")[:-1]:
        assert event.startswith(b"data: "), event
        out.append(orjson.loads(event[len(b"data: "):]))
    return out


def sse_events(data: bytes) -> list[SSEEvent]:
    return [SSEEvent(orjson.dumps(p)) for p in sse_payloads(data)]


def fold(events: list[StreamEvent]) -> ChatResponse:
    accumulator = StreamAccumulator()
    for event in events:
        accumulator.add(event)
    assert accumulator.finished
    return accumulator.result()
