"""Errors in Google's shape (inbound) and Gemini errors into the taxonomy (outbound).

Wire shape (google.rpc.Status as JSON), both as an HTTP error body and as the data of an SSE
event inside a 200 stream:
`{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...]}}`.
`details` may hold `google.rpc.RetryInfo` (`retryDelay: "30s"`), `google.rpc.ErrorInfo`
(`reason: "API_KEY_INVALID"`) and `google.rpc.BadRequest` (`fieldViolations`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.core.errors import (
    AuthenticationFailed,
    ContextWindowExceeded,
    ModelNotFound,
    Overloaded,
    PermissionDenied,
    ServiceUnavailable,
    TurnoutError,
    error_class_for_status,
)
from turnout.core.retry_after import parse_duration, parse_retry_after

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

# --- inbound: taxonomy -> Google ------------------------------------------------------------------

_STATUS_NAME: dict[int, str] = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(status: int) -> str:
    """Google's canonical status name for an HTTP status."""
    if status in _STATUS_NAME:
        return _STATUS_NAME[status]
    return "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"


def error_body(error: TurnoutError) -> tuple[int, dict[str, Any]]:
    """(status, body) for an error. Google has no 529: overload is 503 `UNAVAILABLE`."""
    status = 503 if error.status == 529 else error.status
    body: dict[str, Any] = {"code": status, "message": error.message,
                            "status": status_name(status)}
    details: list[dict[str, Any]] = []
    if error.retry_after is not None:
        details.append({"@type": _RETRY_INFO,
                        "retryDelay": f"{max(0, math.ceil(error.retry_after))}s"})
    if error.param:
        details.append({"@type": _BAD_REQUEST, "fieldViolations": [
            {"field": error.param, "description": error.message}]})
    if details:
        body["details"] = details
    return status, {"error": body}


def encode_error(error: TurnoutError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, body) for an error response to a Gemini client."""
    status, body = error_body(error)
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        # Retry-After takes whole seconds; round up so a client never retries too early.
        headers["Retry-After"] = str(max(0, math.ceil(error.retry_after)))
    return status, headers, body


# --- outbound: Gemini -> taxonomy -----------------------------------------------------------------

_CODE_BY_NAME: dict[str, int] = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ABORTED": 409,
    "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "UNKNOWN": 500,
    "INTERNAL": 500, "DATA_LOSS": 500, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# ErrorInfo reasons that mean the credentials are bad (Gemini answers 400 for them).
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED",
                           "ACCESS_TOKEN_INVALID"})
# Message text only as a last resort: Gemini has no structured field for an oversized prompt.
_CONTEXT_WINDOW = re.compile(r"token count[^.]*exceeds the maximum", re.IGNORECASE)
_OVERLOADED = re.compile(r"\boverloaded\b", re.IGNORECASE)


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> TurnoutError:
    """Map an upstream Gemini error response to the taxonomy (`origin="upstream"`)."""
    try:
        payload: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # the JSON-array form of streamGenerateContent
        payload = payload[0]
    info = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(info, dict):
        text = body.decode("utf-8", "replace").strip()[:500]
        info = {"message": text or f"Gemini returned HTTP {status}"}
    return error_from_payload(info, status=status, headers=headers)


def error_from_payload(
    info: Any, *, status: int | None, headers: Mapping[str, str]
) -> TurnoutError:
    """The error for a google.rpc.Status object; `status` is the HTTP status when there is one
    (None for an error event inside a 200 stream: then `code`/`status` in the body decide)."""
    info = info if isinstance(info, dict) else {}
    message = info.get("message") if isinstance(info.get("message"), str) else ""
    name = info.get("status") if isinstance(info.get("status"), str) else ""
    details = [d for d in info.get("details", []) or [] if isinstance(d, dict)] \
        if isinstance(info.get("details"), list) else []
    effective = status if status is not None and status >= 400 else _body_code(info, name)
    cls = error_class_for_status(effective)
    if _error_reason(details) in _AUTH_REASONS:
        cls = AuthenticationFailed
    elif name == "FAILED_PRECONDITION":
        # e.g. "User location is not supported", billing not enabled: the account cannot use
        # this target, though the request itself is fine (another target may serve it).
        cls = PermissionDenied
    elif effective == 404:
        # The model is the only resource a generateContent URL names.
        cls = ModelNotFound
    elif effective == 400 and _CONTEXT_WINDOW.search(message):
        cls = ContextWindowExceeded
    elif cls is ServiceUnavailable and _OVERLOADED.search(message):
        cls = Overloaded
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = _retry_delay(details)
    return cls(message or name or f"Gemini returned HTTP {effective}", origin="upstream",
               param=_field(details), upstream_status=effective, retry_after=retry_after)


def _body_code(info: dict[str, Any], name: str) -> int:
    code = info.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
        return code
    return _CODE_BY_NAME.get(name, 500)


def _error_reason(details: list[dict[str, Any]]) -> str | None:
    for detail in details:
        if detail.get("@type") == _ERROR_INFO and isinstance(detail.get("reason"), str):
            return str(detail["reason"])
    return None


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    for detail in details:
        delay = detail.get("retryDelay")
        if detail.get("@type") == _RETRY_INFO and isinstance(delay, str):
            return parse_duration(delay)
    return None


def _field(details: list[dict[str, Any]]) -> str | None:
    for detail in details:
        violations = detail.get("fieldViolations")
        if detail.get("@type") == _BAD_REQUEST and isinstance(violations, list):
            for violation in violations:
                if isinstance(violation, dict) and isinstance(violation.get("field"), str):
                    return str(violation["field"])
    return None
