"""Errors: Gemini error bodies -> taxonomy (status first, then structured fields, message
text last), and taxonomy -> google.rpc.Status bodies for Gemini clients."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from turnout.core.errors import (
    AllAttemptsFailed,
    Attempt,
    AuthenticationFailed,
    ClientClosed,
    ConnectionFailed,
    ContentFiltered,
    ContextWindowExceeded,
    InternalError,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    ServerError,
    ServiceUnavailable,
    TurnoutError,
    UnsupportedFeature,
    UpstreamTimeout,
)
from turnout.dialects.gemini import DIALECT

RETRY = "type.googleapis.com/google.rpc.RetryInfo"


def body(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return orjson.dumps({"error": error})


@pytest.mark.parametrize(("status", "payload", "cls"), [
    (400, body(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), InvalidRequest),
    (400, body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com"}]), AuthenticationFailed),
    (400, body(400, "INVALID_ARGUMENT", "The input token count (1048577) exceeds the maximum "
                                        "number of tokens allowed (1048576)."),
     ContextWindowExceeded),
    (400, body(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
     PermissionDenied),
    (401, body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
     AuthenticationFailed),
    (403, body(403, "PERMISSION_DENIED", "Permission denied on resource project x."),
     PermissionDenied),
    (404, body(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta, or is "
                                 "not supported for generateContent."), ModelNotFound),
    (413, body(413, "INVALID_ARGUMENT", "Request payload size exceeds the limit."),
     RequestTooLarge),
    (429, body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota."), RateLimited),
    (500, body(500, "INTERNAL", "An internal error has occurred."), ServerError),
    (503, body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
     Overloaded),
    (503, body(503, "UNAVAILABLE", "The service is currently unavailable."),
     ServiceUnavailable),
    (504, body(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
     UpstreamTimeout),
    (502, b"<html>Bad Gateway</html>", ServerError),
    (418, b"", InvalidRequest),
])
def test_decode_error_classes(status: int, payload: bytes, cls: type[TurnoutError]) -> None:
    error = DIALECT.decode_error(status, {}, payload)
    assert type(error) is cls
    assert error.origin == "upstream" and error.upstream_status == status
    assert error.message


def test_status_wins_over_the_body_and_message_text_is_the_last_resort() -> None:
    # A 429 stays a rate limit whatever the text says; a 400 that mentions tokens without the
    # context-window wording stays a plain invalid request.
    assert type(DIALECT.decode_error(429, {}, body(
        429, "RESOURCE_EXHAUSTED", "The model is overloaded"))) is RateLimited
    assert type(DIALECT.decode_error(400, {}, body(
        400, "INVALID_ARGUMENT", "maxOutputTokens must be positive"))) is InvalidRequest


def test_retry_info_and_headers() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
               {"@type": RETRY, "retryDelay": "37s"}]
    payload = body(429, "RESOURCE_EXHAUSTED", "quota", details)
    assert DIALECT.decode_error(429, {}, payload).retry_after == 37.0
    assert DIALECT.decode_error(429, {}, body(429, "RESOURCE_EXHAUSTED", "q", [
        {"@type": RETRY, "retryDelay": "1.500s"}])).retry_after == 1.5
    # A Retry-After header, when present, is what the server asked for at the HTTP level.
    assert DIALECT.decode_error(429, {"retry-after": "5"}, payload).retry_after == 5.0
    assert DIALECT.decode_error(429, {}, body(429, "RESOURCE_EXHAUSTED", "q")).retry_after \
        is None


def test_field_violations_name_the_param_and_list_bodies_are_read() -> None:
    payload = orjson.dumps([{"error": {
        "code": 400, "status": "INVALID_ARGUMENT",
        "message": "Invalid value at 'generation_config.temperature'",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
            {"field": "generation_config.temperature", "description": "bad"}]}]}}])
    error = DIALECT.decode_error(400, {}, payload)
    assert type(error) is InvalidRequest and error.param == "generation_config.temperature"


@pytest.mark.parametrize(("error", "status", "name"), [
    (InvalidRequest("bad"), 400, "INVALID_ARGUMENT"),
    (UnsupportedFeature("no"), 400, "INVALID_ARGUMENT"),
    (ContextWindowExceeded("long"), 400, "INVALID_ARGUMENT"),
    (ContentFiltered("blocked"), 400, "INVALID_ARGUMENT"),
    (AuthenticationFailed("who"), 401, "UNAUTHENTICATED"),
    (PermissionDenied("no"), 403, "PERMISSION_DENIED"),
    (ModelNotFound("none"), 404, "NOT_FOUND"),
    (RequestTooLarge("big"), 413, "INVALID_ARGUMENT"),
    (ClientClosed("bye"), 499, "CANCELLED"),
    (RateLimited("slow"), 429, "RESOURCE_EXHAUSTED"),
    (Overloaded("busy"), 503, "UNAVAILABLE"),
    (ServiceUnavailable("down"), 503, "UNAVAILABLE"),
    (ServerError("boom"), 502, "UNAVAILABLE"),
    (ConnectionFailed("cut"), 502, "UNAVAILABLE"),
    (UpstreamTimeout("slow"), 504, "DEADLINE_EXCEEDED"),
    (InternalError("oops"), 500, "INTERNAL"),
])
def test_encode_error_shape(error: TurnoutError, status: int, name: str) -> None:
    code, headers, payload = DIALECT.encode_error(error)
    assert code == status and headers == {}
    assert payload == {"error": {"code": status, "message": error.message, "status": name}}


def test_encode_error_keeps_retry_after_and_param() -> None:
    status, headers, payload = DIALECT.encode_error(
        RateLimited("wait", retry_after=1.2))
    assert status == 429 and headers == {"Retry-After": "2"}
    assert payload["error"]["details"] == [{"@type": RETRY, "retryDelay": "2s"}]
    _, _, invalid = DIALECT.encode_error(InvalidRequest("bad role", param="contents.0.role"))
    assert invalid["error"]["details"] == [{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "contents.0.role", "description": "bad role"}]}]


def test_all_attempts_failed_takes_the_last_status() -> None:
    failed = AllAttemptsFailed([Attempt("a", "error", RateLimited("x", origin="upstream",
                                                                  retry_after=3))])
    status, headers, payload = DIALECT.encode_error(failed)
    assert status == 429 and payload["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert headers == {"Retry-After": "3"}


@pytest.mark.parametrize("error", [
    InvalidRequest("a", param="p"), AuthenticationFailed("b"), PermissionDenied("c"),
    RateLimited("d", retry_after=4), Overloaded("e"), ServiceUnavailable("f"),
    UpstreamTimeout("g"), ModelNotFound("h"),
])
def test_encode_then_decode_round_trip(error: TurnoutError) -> None:
    status, headers, payload = DIALECT.encode_error(error)
    back = DIALECT.decode_error(status, {k.lower(): v for k, v in headers.items()},
                                orjson.dumps(payload))
    expected = ServiceUnavailable if isinstance(error, Overloaded) else type(error)
    assert type(back) is expected
    assert back.retry_after == error.retry_after and back.param == error.param
