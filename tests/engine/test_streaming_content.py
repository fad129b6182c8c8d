"""What commits a stream: the canonical events a client could see something of."""

from __future__ import annotations

import pytest

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
from turnout.engine.streaming import carries_content


@pytest.mark.parametrize(("event", "content"), [
    (ResponseStart("id", "model"), False),
    (UsageUpdate(Usage(input_tokens=3)), False),
    (PartStart(0, TextPart("")), False),
    (TextDelta(0, ""), False),
    (PartStart(0, ThinkingPart("")), False),
    (ThinkingDelta(0, ""), False),
    (ThinkingDelta(0, "", "signature"), False),  # belongs to a part still to come
    (PartStart(0, ThinkingPart("", "signature")), False),
    (PartEnd(0), False),
    (PartStart(0, TextPart("Hi")), True),
    (TextDelta(0, "Hi"), True),
    (PartStart(0, ThinkingPart("hmm")), True),
    (ThinkingDelta(0, "hmm"), True),
    (PartStart(0, ThinkingPart("", None, "opaque")), True),  # redacted thinking
    (PartStart(0, ToolCallPart("call_1", "get_weather", "")), True),
    (ToolArgsDelta(0, '{"city"'), True),
    (Finish("stop"), True),  # an answer with no content at all still ends
])
def test_carries_content(event: StreamEvent, content: bool) -> None:
    assert carries_content(event) is content
