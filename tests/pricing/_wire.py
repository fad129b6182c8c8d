"""Decoding real-shaped provider bodies and streams into canonical responses."""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.events import StreamAccumulator
from turnout.core.response import ChatResponse
from turnout.dialects.registry import get_dialect
from turnout.transport.sse import SSEParser


def decode_body(dialect: str, body: dict[str, Any]) -> ChatResponse:
    return get_dialect(dialect).decode_response(orjson.dumps(body))


def sse(events: list[tuple[str | None, Any]]) -> bytes:
    """SSE bytes: (event name or None, JSON payload or a raw string such as [DONE])."""
    out = b""
    for name, data in events:
        if name is not None:
            out += b"event: " + name.encode() + b"\n"
        payload = data.encode() if isinstance(data, str) else orjson.dumps(data)
        out += b"data: " + payload + b"\n\n"
    return out


def fold_stream(dialect: str, wire: bytes, *, complete: bool = True) -> ChatResponse:
    """Fold an upstream stream; with `complete=False` the stream may be cut (no close)."""
    parser, decoder = SSEParser(), get_dialect(dialect).stream_decoder()
    folded = StreamAccumulator()
    for event in parser.feed(wire) + parser.flush():
        for canonical in decoder.feed(event):
            folded.add(canonical)
    if complete:
        for canonical in decoder.close():
            folded.add(canonical)
        assert folded.finished
    return folded.result()
