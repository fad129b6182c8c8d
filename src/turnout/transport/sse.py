"""Incremental server-sent-events parser (WHATWG rules, minus reconnection fields)."""

from __future__ import annotations

from turnout.dialects.base import SSEEvent


class SSEParser:
    """Feed raw bytes as they arrive; get complete events back.

    Lines may end in LF, CRLF or CR-LF pairs split across chunks; events end at a blank
    line. Comment lines (`:`) and `id:`/`retry:` fields are ignored.
    """

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data or self._event is not None:
                    events.append(SSEEvent(b"\n".join(self._data), self._event))
                    self._data = []
                    self._event = None
                continue
            self._field(line)
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """At end of input: an event not terminated by a blank line is still delivered
        (its consumer decides whether the stream was complete)."""
        if self._buffer:
            line = self._buffer.rstrip(b"\r")
            self._buffer = b""
            if line:
                self._field(line)
        if self._data:
            event = SSEEvent(b"\n".join(self._data), self._event)
            self._data, self._event = [], None
            return [event]
        return []

    def _field(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode("utf-8", "replace")
        # comments (":") and id/retry fields carry nothing we use
