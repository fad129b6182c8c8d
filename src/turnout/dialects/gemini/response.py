"""Gemini `GenerateContentResponse` <-> canonical `ChatResponse` (non-stream).

Decoding runs the body through the stream decoder as one chunk, so a non-stream answer and
the same answer streamed fold to equal responses. Only the first candidate is read: requests
never ask for more. Gemini has no creation time, so `created` is 0.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.events import StreamAccumulator
from turnout.core.response import ChatResponse
from turnout.dialects.gemini._wire import (
    finish_reason_out,
    message,
    usage_out,
    verbatim_id,
)
from turnout.dialects.gemini.parts import model_parts_out
from turnout.dialects.gemini.stream import GeminiStreamDecoder, malformed, raise_if_blocked


def encode_response(response: ChatResponse) -> dict[str, Any]:
    """The `GenerateContentResponse` JSON a Gemini client expects."""
    candidate: dict[str, Any] = {}
    parts = model_parts_out(response.parts, verbatim_id, "parts", malformed)
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    candidate["finishReason"] = finish_reason_out(response.finish_reason)
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": usage_out(response.usage),
        "modelVersion": response.model,
        "responseId": response.id,
    }


def decode_response(body: bytes) -> ChatResponse:
    """Parse an upstream body; raises `MalformedResponse` (or `ContentFiltered` for a blocked
    prompt, or the mapped error for an error object)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed("body is not JSON") from exc
    payload = message(payload, "", malformed)
    if "error" not in payload and not payload.get("candidates"):
        raise_if_blocked(payload.get("promptFeedback"))
        raise malformed("no candidates", "candidates")
    decoder = GeminiStreamDecoder()
    accumulator = StreamAccumulator()
    for event in decoder.feed_payload(payload) + decoder.finish_complete():
        accumulator.add(event)
    return accumulator.result()
