"""The OpenAI Chat Completions wire format, both directions.

Inbound it serves OpenAI SDK clients (`/v1/chat/completions`); outbound it calls OpenAI and
every OpenAI-compatible server (OpenRouter, vLLM, Ollama, llama.cpp); the provider simulator
answers with it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from turnout.core.errors import TurnoutError
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse
from turnout.dialects.base import HttpRequest, UpstreamTarget
from turnout.dialects.openai_chat import errors, request_in, request_out
from turnout.dialects.openai_chat import response as responses
from turnout.dialects.openai_chat.stream import ChatStreamDecoder, ChatStreamEncoder

__all__ = ["DIALECT", "ChatStreamDecoder", "ChatStreamEncoder", "OpenAIChatDialect"]


class OpenAIChatDialect:
    """Chat Completions encode/decode. Stateless apart from the injected clock, which gives
    `created` to responses that lack one (answers translated from dialects without it)."""

    name = "openai_chat"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    # -- inbound -------------------------------------------------------------------------------
    def decode_request(
        self, body: Any, *, model: str | None = None, stream: bool | None = None
    ) -> ChatRequest:
        return request_in.decode_request(body, model=model, stream=stream)

    def encode_response(self, response: ChatResponse) -> dict[str, Any]:
        return responses.encode_response(response, int(self._clock()))

    def stream_encoder(self, request: ChatRequest) -> ChatStreamEncoder:
        return ChatStreamEncoder(request.model, request.include_usage, int(self._clock()))

    def encode_error(self, error: TurnoutError) -> tuple[int, dict[str, str], dict[str, Any]]:
        return errors.encode_error(error)

    # -- outbound ------------------------------------------------------------------------------
    def build_request(self, request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
        return request_out.build_request(request, target)

    def decode_response(self, body: bytes) -> ChatResponse:
        return responses.decode_response(body)

    def stream_decoder(self) -> ChatStreamDecoder:
        return ChatStreamDecoder()

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        return errors.decode_error(status, headers, body)


DIALECT = OpenAIChatDialect()
"""The shared instance the dialect registry returns."""
