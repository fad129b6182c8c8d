"""Errors: the OpenAI error body for clients, and upstream errors into the taxonomy."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.core.errors import (
    AuthenticationFailed,
    ContentFiltered,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TurnoutError,
    UnsupportedFeature,
    UpstreamTimeout,
    error_class_for_status,
)
from turnout.core.retry_after import parse_retry_after

_TYPE_BY_STATUS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error",
    429: "rate_limit_error", 529: "overloaded_error",
}
# Taxonomy codes whose OpenAI spelling differs, so OpenAI clients that branch on `code`
# see what OpenAI itself would send.
_CODE_TO_WIRE = {"rate_limited": "rate_limit_exceeded"}

# Structured `error.code` values (OpenAI's, OpenRouter's, and our own taxonomy codes, so a
# Turnout upstream maps back exactly) that refine the status class.
_BY_CODE: dict[str, type[TurnoutError]] = {
    "context_length_exceeded": ContextWindowExceeded,
    # llama.cpp's server (`type`, with `code` the number 400): the prompt exceeds n_ctx.
    "exceed_context_size_error": ContextWindowExceeded,
    "rate_limit_exceeded": RateLimited, "insufficient_quota": RateLimited,
    "rate_limited": RateLimited,
    "content_filter": ContentFiltered, "content_policy_violation": ContentFiltered,
    "content_filtered": ContentFiltered,
    "model_not_found": ModelNotFound,
    "unsupported_feature": UnsupportedFeature,
    "invalid_api_key": AuthenticationFailed,
    "overloaded": Overloaded, "service_unavailable": ServiceUnavailable,
    "upstream_timeout": UpstreamTimeout,
}
# `error.type` values, used when no status is known (errors inside a 200 stream).
_BY_TYPE: dict[str, type[TurnoutError]] = {
    "invalid_request_error": InvalidRequest, "authentication_error": AuthenticationFailed,
    "permission_error": PermissionDenied, "not_found_error": NotFound,
    "rate_limit_error": RateLimited, "insufficient_quota": RateLimited,
    "overloaded_error": Overloaded, "server_error": ServerError, "api_error": ServerError,
}
_MAX_TEXT = 500


def error_type(status: int) -> str:
    """OpenAI's `error.type` for a status."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def error_object(error: TurnoutError) -> dict[str, Any]:
    """The `{"error": {...}}` body, also sent as a stream's terminal error event."""
    return {"error": {
        "message": error.message,
        # OpenAI spells an exhausted quota as its own type, not a rate limit.
        "type": "insufficient_quota" if error.code == "insufficient_quota"
        else error_type(error.status),
        "param": error.param,
        "code": _CODE_TO_WIRE.get(error.code, error.code),
    }}


def encode_error(error: TurnoutError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, body) of an error response; `Retry-After` in whole seconds."""
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(error.retry_after))
    return error.status, headers, error_object(error)


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
    """Map an upstream error response: status first, refined by `error.code`/`type`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    error = error_from_payload(_parse(body), status, body)
    error.upstream_status = status
    error.retry_after = parse_retry_after(lowered)
    return error


def error_from_payload(payload: Any, status: int | None, raw: bytes = b"") -> TurnoutError:
    """Build the taxonomy error for a parsed error body (or stream error event).

    Accepts OpenAI's `{"error": {...}}`, Ollama's `{"error": "text"}` and vLLM's flat
    `{"object": "error", "message": ..., "code": 400}`. With `status=None` (an error inside
    a 200 stream) a numeric `code`/`status` in the body gives the status, else `type` does.
    """
    detail: dict[str, Any] = {}
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        detail = inner if isinstance(inner, dict) else {"message": inner}
    message = detail.get("message")
    if not isinstance(message, str) or not message:
        text = raw.decode("utf-8", "replace").strip()[:_MAX_TEXT]
        message = text or (f"upstream error (HTTP {status})" if status else "upstream error")
    code, kind = detail.get("code"), detail.get("type")
    if status is None:
        for candidate in (detail.get("status"), code):
            if isinstance(candidate, int) and not isinstance(candidate, bool) \
                    and 400 <= candidate <= 599:
                status = candidate
                break
    cls = _classify(status, code, kind)
    param = detail.get("param")
    return cls(
        message, origin="upstream", param=param if isinstance(param, str) else None,
        upstream_status=status,
    )


def _classify(status: int | None, code: Any, kind: Any) -> type[TurnoutError]:
    if isinstance(code, str) and code in _BY_CODE:
        return _BY_CODE[code]
    if isinstance(kind, str) and kind in _BY_CODE:  # some servers put the code in `type`
        return _BY_CODE[kind]
    if status is not None:
        return error_class_for_status(status)
    if isinstance(kind, str) and kind in _BY_TYPE:
        return _BY_TYPE[kind]
    return ServerError  # an unexplained failure inside a stream is the upstream's


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
