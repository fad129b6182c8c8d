from turnout.dialects.base import SSEEvent
from turnout.transport.sse import SSEParser


def test_events_split_across_chunks_and_line_endings() -> None:
    raw = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keepalive\n\ndata: x\ndata: y\n\n"
    parser = SSEParser()
    events: list[SSEEvent] = []
    for i in range(len(raw)):  # byte by byte: the worst case for a buffering parser
        events += parser.feed(raw[i : i + 1])
    assert events == [SSEEvent(b'{"a":1}', "message_start"), SSEEvent(b"x\ny", None)]


def test_data_without_space_and_unterminated_tail() -> None:
    parser = SSEParser()
    assert parser.feed(b"data:[DONE]\n\ndata: tail") == [SSEEvent(b"[DONE]")]
    assert parser.flush() == [SSEEvent(b"tail")]
    assert parser.flush() == []


def test_comment_only_stream_yields_nothing() -> None:
    parser = SSEParser()
    assert parser.feed(b": ping\n\n: ping\n\n") == []
