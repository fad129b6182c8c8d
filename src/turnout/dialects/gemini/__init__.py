"""The Google Gemini `generateContent` dialect (REST, `v1beta`, camelCase JSON), both
directions: inbound for clients and simulators speaking Gemini, outbound for Gemini upstreams.

Modules: `request_in`/`contents_in` (client request -> canonical), `request_out` (canonical
-> upstream HTTP request), `response` (non-stream bodies), `stream` (SSE chunks), `errors`,
`parts`/`fold` (part codecs shared by all of them), `schema` (OpenAPI schema -> JSON Schema).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from turnout.core.errors import TurnoutError
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse
from turnout.dialects.base import Dialect, HttpRequest, UpstreamTarget
from turnout.dialects.gemini import errors, request_in, request_out, response
from turnout.dialects.gemini.stream import GeminiStreamDecoder, GeminiStreamEncoder


class GeminiDialect:
    """Gemini `generateContent` / `streamGenerateContent?alt=sse`."""

    name = "gemini"

    def decode_request(
        self, body: Any, *, model: str | None = None, stream: bool | None = None
    ) -> ChatRequest:
        return request_in.decode_request(body, model=model, stream=stream)

    def encode_response(self, response_: ChatResponse) -> dict[str, Any]:
        return response.encode_response(response_)

    def stream_encoder(self, request: ChatRequest) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(request)

    def encode_error(self, error: TurnoutError) -> tuple[int, dict[str, str], dict[str, Any]]:
        return errors.encode_error(error)

    def build_request(self, request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
        return request_out.build_request(request, target)

    def decode_response(self, body: bytes) -> ChatResponse:
        return response.decode_response(body)

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder()

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        return errors.decode_error(status, headers, body)


DIALECT = GeminiDialect()
"""The shared, stateless instance."""

if TYPE_CHECKING:
    _conforms: Dialect = DIALECT  # mypy checks the protocol here

__all__ = ["DIALECT", "GeminiDialect", "GeminiStreamDecoder", "GeminiStreamEncoder"]
