"""Writing a simulated answer as a stream, chunk by chunk, with stream faults applied.

A "chunk" is one non-empty output of the dialect's stream encoder (one SSE event, or one
element of Gemini's JSON-array stream). Chunks of the events before `Finish` are the body;
`Finish` and the encoder's `done()` are the terminal chunks that stream faults never reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from aiohttp import web

from turnout.core.events import (
    Finish,
    ResponseStart,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UsageUpdate,
    response_to_events,
)
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse, Usage
from turnout.dialects.base import StreamEncoder
from turnout.sim.faults import Fault
from turnout.sim.state import SimulatorState

_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")
_ARGS_PIECE = 16
"""Characters per tool-arguments delta, for dialects that stream arguments in pieces."""
_CUTTING_KINDS = frozenset({"reset", "cut_stream", "error_event", "malformed"})


def stream_events(response: ChatResponse, *, chunk_words: int,
                  split_arguments: bool) -> Iterator[StreamEvent]:
    """The response as stream events, with one text delta per `chunk_words` words. Input
    usage is reported right after the start as well, as Anthropic does in `message_start`."""
    for event in response_to_events(response):
        if isinstance(event, ResponseStart):
            yield event
            yield UsageUpdate(Usage(input_tokens=response.usage.input_tokens))
        elif isinstance(event, TextDelta):
            for piece in split_words(event.text, chunk_words):
                yield TextDelta(event.index, piece)
        elif isinstance(event, ThinkingDelta):
            pieces = split_words(event.text, chunk_words) or [""]
            for piece in pieces[:-1]:
                yield ThinkingDelta(event.index, piece)
            yield ThinkingDelta(event.index, pieces[-1], event.signature)
        elif isinstance(event, ToolArgsDelta) and split_arguments:
            text = event.arguments
            for start in range(0, len(text), _ARGS_PIECE):
                yield ToolArgsDelta(event.index, text[start:start + _ARGS_PIECE])
        else:
            yield event


def split_words(text: str, chunk_words: int) -> list[str]:
    """Pieces of `chunk_words` words each (spacing kept), which join back into `text`."""
    if not text:
        return []
    words = _WORD_BOUNDARY.split(text)
    size = max(1, chunk_words)
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def corrupt(chunk: bytes) -> bytes:
    """The chunk with its JSON payload cut in half: what a broken proxy might send."""
    lines = chunk.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            lines[i] = b"data: " + payload[: max(1, len(payload) // 2)]
            return b"\n".join(lines)
    return chunk[: max(1, len(chunk) // 2)]


class JsonArrayFramer:
    """Re-frames SSE chunks as Gemini's default stream: one JSON array, element by element."""

    def __init__(self) -> None:
        self._started = False

    def frame(self, chunk: bytes) -> bytes:
        return b"".join(self._separator() + p for p in _data_payloads(chunk))

    def broken(self, chunk: bytes | None) -> bytes:
        """An array element with its JSON cut in half."""
        payloads = _data_payloads(chunk or b"") or [_BROKEN_FALLBACK]
        return self._separator() + payloads[0][: max(1, len(payloads[0]) // 2)]

    def end(self) -> bytes:
        return b"]" if self._started else b"[]"

    def _separator(self) -> bytes:
        separator = b",\r\n" if self._started else b"["
        self._started = True
        return separator


_BROKEN_FALLBACK = b'{"candidates": [{"content": {"parts": []}}]}'


def _data_payloads(chunk: bytes) -> list[bytes]:
    return [line[5:].strip() for line in chunk.split(b"\n") if line.startswith(b"data:")]


async def write_stream(
    http_request: web.Request,
    state: SimulatorState,
    request: ChatRequest,
    response: ChatResponse,
    fault: Fault | None,
    *,
    sse: bool = True,
) -> web.StreamResponse:
    """Stream `response` to the client in the dialect's format, applying `fault`."""
    encoder = state.dialect.stream_encoder(request)
    framer = None if sse else JsonArrayFramer()
    content_type = _SSE_TYPES.get(state.dialect_name, "text/event-stream") if sse \
        else "application/json; charset=UTF-8"
    out = web.StreamResponse(headers={"Content-Type": content_type,
                                      "Cache-Control": "no-cache"})
    await out.prepare(http_request)  # StreamResponse sends its headers at once
    if fault is not None and fault.chunks is not None:
        return await _write_raw(out, fault.chunks)
    kind = fault.kind if fault is not None else None
    gap = fault.seconds if fault is not None and kind == "slow_chunks" else None
    if fault is not None and kind == "slow_first_token" and fault.seconds:
        await state.sleep(fault.seconds)
    cut_at = fault.after_chunks if fault is not None and kind in _CUTTING_KINDS else None

    written = 0
    finish: Finish | None = None
    pending: bytes | None = None  # the chunk a cut interrupts (malformed corrupts it)
    split_arguments = state.dialect_name != "gemini"  # Gemini sends whole function calls
    for event in stream_events(response, chunk_words=state.chunk_words,
                               split_arguments=split_arguments):
        if isinstance(event, Finish):
            finish = event
            continue
        chunk = encoder.encode(event)
        if not chunk:
            continue
        if written == cut_at:
            pending = chunk
            break
        if written and gap:
            await state.sleep(gap)
        await out.write(framer.frame(chunk) if framer else chunk)
        written += 1

    if fault is not None and cut_at is not None:
        return await _apply_cut(http_request, state, out, fault, encoder=encoder,
                                pending=pending, framer=framer)
    tail = (encoder.encode(finish) if finish else b"") + encoder.done()
    if tail:
        if gap:
            await state.sleep(gap)
        await out.write(framer.frame(tail) if framer else tail)
    if framer:
        await out.write(framer.end())
    await out.write_eof()
    return out


_SSE_TYPES = {
    "openai_chat": "text/event-stream; charset=utf-8",
    "anthropic_messages": "text/event-stream; charset=utf-8",
}


async def _write_raw(out: web.StreamResponse, chunks: list[str]) -> web.StreamResponse:
    """A `raw_stream` fault: the given body pieces, then the end of the body."""
    for chunk in chunks:
        await out.write(chunk.encode())
    out.force_close()
    await out.write_eof()
    return out


async def _apply_cut(
    http_request: web.Request,
    state: SimulatorState,
    out: web.StreamResponse,
    fault: Fault,
    *,
    encoder: StreamEncoder,
    pending: bytes | None,
    framer: JsonArrayFramer | None,
) -> web.StreamResponse:
    """End the stream at the cut point the way `fault` says."""
    if fault.kind == "reset":
        abort_connection(http_request)
        return out
    if fault.kind == "error_event":
        chunk = encoder.encode_error(fault.to_error(state.name))
        # a JSON-array stream stays a valid array, so that the error element can be read
        await out.write(framer.frame(chunk) + framer.end() if framer else chunk)
    elif fault.kind == "malformed":
        if framer:
            await out.write(framer.broken(pending))
        else:
            await out.write(corrupt(pending or b"data: " + _BROKEN_FALLBACK + b"\n\n"))
    # cut_stream, and after an error event or a broken chunk: end the body without the
    # terminal event, and close the connection as a failing upstream would
    out.force_close()
    await out.write_eof()
    return out


def abort_connection(http_request: web.Request) -> None:
    """Drop the TCP connection at once, without a response (an RST, not a clean close)."""
    transport = http_request.transport
    if transport is not None:
        transport.abort()
