"""Errors in Anthropic's shape (inbound) and Anthropic errors into the taxonomy (outbound).

Wire shape: `{"type": "error", "error": {"type": "<error type>", "message": "..."}}`, both as
an HTTP error body and as the data of an `error` event inside a 200 stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.core.errors import (
    AuthenticationFailed,
    ContextWindowExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    ServerError,
    TurnoutError,
    UpstreamTimeout,
    error_class_for_status,
)
from turnout.core.retry_after import parse_retry_after

# --- inbound: taxonomy -> Anthropic ---------------------------------------------------------

_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    504: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(error: TurnoutError) -> tuple[int, dict[str, Any]]:
    """(status, body) for an error; overload is always reported as Anthropic's 529."""
    kind = error_type_for_status(error.status)
    status = 529 if kind == "overloaded_error" else error.status
    return status, {"type": "error", "error": {"type": kind, "message": error.message}}


def encode_error(error: TurnoutError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, body) for an error response to an Anthropic client."""
    status, body = error_body(error)
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        # Retry-After takes whole seconds; round up so a client never retries too early.
        headers["Retry-After"] = str(max(0, math.ceil(error.retry_after)))
    return status, headers, body


# --- outbound: Anthropic -> taxonomy --------------------------------------------------------

_CLASS_BY_TYPE: dict[str, type[TurnoutError]] = {
    "invalid_request_error": InvalidRequest,
    "authentication_error": AuthenticationFailed,
    "permission_error": PermissionDenied,
    # A billing problem is the account's, not the request's: another provider may serve it.
    "billing_error": PermissionDenied,
    "not_found_error": NotFound,
    "request_too_large": RequestTooLarge,
    "rate_limit_error": RateLimited,
    "timeout_error": UpstreamTimeout,
    "api_error": ServerError,
    "overloaded_error": Overloaded,
}

# `api_error` and `invalid_request_error` say no more than the status does; the other types
# refine it (a 500 whose body says `overloaded_error` is an overload).
_REFINING_TYPES = frozenset(_CLASS_BY_TYPE) - {"api_error", "invalid_request_error"}


def error_from_wire(
    kind: str | None,
    message: str,
    *,
    status: int | None = None,
    retry_after: float | None = None,
) -> TurnoutError:
    """The taxonomy error for an Anthropic error type and message. With `status` (an HTTP
    error response) the status decides first; without it (an `error` event inside a 200
    stream) the type alone decides."""
    if status is not None:
        cls = error_class_for_status(status)
        refined = _CLASS_BY_TYPE.get(kind or "")
        if kind in _REFINING_TYPES and refined is not None and not issubclass(cls, refined):
            cls = refined
    else:
        cls = _CLASS_BY_TYPE.get(kind or "", ServerError)
    if cls is InvalidRequest and _says_context_exceeded(message):
        cls = ContextWindowExceeded
    return cls(message, origin="upstream", upstream_status=status, retry_after=retry_after)


def _says_context_exceeded(message: str) -> bool:
    # Last resort, as the design allows: Anthropic reports an over-long prompt only as an
    # `invalid_request_error` with this wording ("prompt is too long: 208310 tokens > 200000
    # maximum", "input length and `max_tokens` exceed context limit: ..."). Tested.
    text = message.lower()
    return "prompt is too long" in text or "exceed context limit" in text


def parse_error_payload(payload: Any) -> tuple[str | None, str | None]:
    """(error type, message) from a decoded error body, or (None, None) if not that shape."""
    if isinstance(payload, dict):
        inner = payload.get("error")
        if isinstance(inner, dict):
            kind = inner.get("type")
            message = inner.get("message")
            return (kind if isinstance(kind, str) else None,
                    message if isinstance(message, str) else None)
    return None, None


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
    """Map an upstream error response to the taxonomy (`origin="upstream"`)."""
    try:
        payload: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    kind, message = parse_error_payload(payload)
    if message is None:
        # Not Anthropic's shape (a proxy's HTML page, an empty body): keep a short excerpt.
        excerpt = body[:200].decode("utf-8", "replace").strip()
        message = f"Anthropic returned HTTP {status}" + (f": {excerpt}" if excerpt else "")
    return error_from_wire(kind, message, status=status, retry_after=parse_retry_after(headers))
