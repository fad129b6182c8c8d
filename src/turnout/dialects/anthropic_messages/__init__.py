"""The Anthropic Messages dialect (`POST /v1/messages`), both directions.

Inbound it serves clients of the `anthropic` SDK; outbound it calls Anthropic (or anything
speaking its format). Modules: `request_in`/`content_in` (client bodies -> canonical),
`request_out`/`content_out` (canonical -> upstream bodies), `response` (non-stream answers),
`stream` (SSE both ways), `errors` (error shapes both ways), `wire` (shared mappings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from turnout.core.errors import TurnoutError
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse
from turnout.dialects.anthropic_messages import errors, request_in, request_out
from turnout.dialects.anthropic_messages import response as responses
from turnout.dialects.anthropic_messages.stream import (
    AnthropicStreamDecoder,
    AnthropicStreamEncoder,
)
from turnout.dialects.base import Dialect, HttpRequest, UpstreamTarget

__all__ = ["DIALECT", "AnthropicMessagesDialect", "AnthropicStreamDecoder",
           "AnthropicStreamEncoder"]


class AnthropicMessagesDialect:
    """The Anthropic Messages wire format; stateless, so one shared instance serves all."""

    name = "anthropic_messages"

    def decode_request(
        self, body: Any, *, model: str | None = None, stream: bool | None = None
    ) -> ChatRequest:
        return request_in.decode_request(body, model=model, stream=stream)

    def encode_response(self, response: ChatResponse) -> dict[str, Any]:
        return responses.encode_response(response)

    def stream_encoder(self, request: ChatRequest) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(request.model)

    def encode_error(self, error: TurnoutError) -> tuple[int, dict[str, str], dict[str, Any]]:
        return errors.encode_error(error)

    def build_request(self, request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
        return request_out.build_request(request, target)

    def decode_response(self, body: bytes) -> ChatResponse:
        return responses.decode_response(body)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        return errors.decode_error(status, headers, body)


DIALECT: Dialect = AnthropicMessagesDialect()
"""The dialect instance the registry hands out."""
