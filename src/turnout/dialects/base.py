"""The contract every dialect implements, and the small value types it exchanges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from turnout.core.errors import TurnoutError
from turnout.core.events import StreamEvent
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse


@dataclass(slots=True)
class SSEEvent:
    """One server-sent event: its `event:` name (if any) and its joined `data:` lines."""

    data: bytes
    event: str | None = None


@dataclass(slots=True)
class UpstreamTarget:
    """What an outbound adapter needs to call one deployment. Credentials are given
    explicitly; adapters never read the environment."""

    base_url: str
    """API root, version path included, without a trailing slash: the dialect appends its
    paths as they are (`https://api.openai.com/v1`, `https://api.anthropic.com/v1`,
    `https://generativelanguage.googleapis.com/v1beta`). Config compilation normalises
    what users write (`turnout.providers.rows.api_root`)."""
    model: str
    """The provider's own model id."""
    api_key: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers for every call (OpenRouter attribution, `anthropic-beta`, ...)."""


@dataclass(slots=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class StreamDecoder(Protocol):
    """Turns an upstream's SSE events into canonical stream events. Stateful, one per stream."""

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """Events for one SSE event. Raises a `TurnoutError` for an error event inside a
        200 stream (classified like the equivalent status) or `MalformedResponse`."""
        ...

    def close(self) -> list[StreamEvent]:
        """Called at end of input. Raises `ConnectionFailed` when the stream ended before its
        terminal event (cut connection), so a truncated answer never passes as complete."""
        ...


class StreamEncoder(Protocol):
    """Turns canonical stream events into a client's SSE bytes. Stateful, one per stream."""

    def encode(self, event: StreamEvent) -> bytes:
        """SSE bytes for one event (possibly empty)."""
        ...

    def encode_error(self, error: TurnoutError) -> bytes:
        """A terminal error event in this dialect, for failures after the first byte."""
        ...

    def done(self) -> bytes:
        """Bytes that end a successful stream (`data: [DONE]` for OpenAI, else empty)."""
        ...


class Dialect(Protocol):
    """One wire format, both directions."""

    name: str

    # -- inbound: the gateway (or a simulator) serving clients of this dialect ---------------
    def decode_request(
        self, body: Any, *, model: str | None = None, stream: bool | None = None
    ) -> ChatRequest:
        """Validate a parsed JSON body into a `ChatRequest`. `model`/`stream` come from the
        URL for dialects that put them there (Gemini). Raises `InvalidRequest` (with `param`)
        or `UnsupportedFeature`."""
        ...

    def encode_response(self, response: ChatResponse) -> dict[str, Any]:
        ...

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        ...

    def encode_error(self, error: TurnoutError) -> tuple[int, dict[str, str], dict[str, Any]]:
        """(status, headers, body) for an error in this dialect's shape (`Retry-After` kept)."""
        ...

    # -- outbound: the gateway calling a provider of this dialect -----------------------------
    def build_request(self, request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
        """The HTTP request for a provider. Raises `UnsupportedFeature` for anything the
        format cannot express: never drops a feature silently."""
        ...

    def decode_response(self, body: bytes) -> ChatResponse:
        """Raises `MalformedResponse` for a body that is not a valid response."""
        ...

    def stream_decoder(self) -> StreamDecoder:
        ...

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
        """Map an upstream error response (status first, then structured body fields) to the
        taxonomy, with `origin="upstream"` and `retry_after` from the headers."""
        ...
