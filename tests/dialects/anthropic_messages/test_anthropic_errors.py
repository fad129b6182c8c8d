"""Errors both ways: taxonomy -> Anthropic error responses, Anthropic errors -> taxonomy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types.shared import ErrorResponse

from turnout.core.errors import (
    AllAttemptsFailed,
    Attempt,
    AuthenticationFailed,
    ContextWindowExceeded,
    InternalError,
    InvalidRequest,
    NotFound,
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
from turnout.dialects.anthropic_messages import DIALECT

CASES: list[tuple[TurnoutError, int, str, type[anthropic.APIStatusError]]] = [
    (InvalidRequest("bad"), 400, "invalid_request_error", anthropic.BadRequestError),
    (UnsupportedFeature("no"), 400, "invalid_request_error", anthropic.BadRequestError),
    (AuthenticationFailed("who"), 401, "authentication_error", anthropic.AuthenticationError),
    (PermissionDenied("no"), 403, "permission_error", anthropic.PermissionDeniedError),
    (NotFound("gone"), 404, "not_found_error", anthropic.NotFoundError),
    (RequestTooLarge("big"), 413, "request_too_large", anthropic.ContentTooLargeError),
    (RateLimited("slow"), 429, "rate_limit_error", anthropic.RateLimitError),
    (InternalError("oops"), 500, "api_error", anthropic.InternalServerError),
    (ServerError("bad gw"), 502, "api_error", anthropic.InternalServerError),
    (UpstreamTimeout("late"), 504, "api_error", anthropic.GatewayTimeoutError),
    (ServiceUnavailable("down"), 529, "overloaded_error", anthropic.OverloadedError),
    (Overloaded("busy"), 529, "overloaded_error", anthropic.OverloadedError),
]


@pytest.mark.parametrize(("error", "status", "kind", "sdk_error"), CASES)
def test_encode_error(error: TurnoutError, status: int, kind: str,
                      sdk_error: type[anthropic.APIStatusError],
                      sdk_client: Callable[..., anthropic.Anthropic]) -> None:
    got_status, headers, body = DIALECT.encode_error(error)
    assert (got_status, headers) == (status, {})
    assert body == {"type": "error", "error": {"type": kind, "message": error.message}}
    if kind != "request_too_large":  # a documented type the SDK's union does not list
        ErrorResponse.model_validate(body)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(got_status, headers=headers, json=body)

    client = sdk_client(handler)
    with pytest.raises(sdk_error) as info:
        client.messages.create(model="m", max_tokens=1,
                               messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status


@pytest.mark.parametrize(("retry_after", "header"), [(2.1, "3"), (30, "30"), (0.0, "0")])
def test_retry_after_is_whole_seconds_rounded_up(retry_after: float, header: str) -> None:
    status, headers, _ = DIALECT.encode_error(RateLimited("slow", retry_after=retry_after))
    assert status == 429
    assert headers == {"Retry-After": header}


def test_all_attempts_failed_reports_the_last_error() -> None:
    error = AllAttemptsFailed([
        Attempt("a", "error", ServerError("x")),
        Attempt("b", "error", Overloaded("y", retry_after=1.5))])
    status, headers, body = DIALECT.encode_error(error)
    assert status == 529 and body["error"]["type"] == "overloaded_error"
    assert headers == {"Retry-After": "2"}


def _decode(status: int, kind: str | None, message: str = "msg",
            headers: dict[str, str] | None = None) -> TurnoutError:
    body: Any = {"type": "error", "error": {"type": kind, "message": message}}
    return DIALECT.decode_error(status, headers or {}, orjson.dumps(body))


@pytest.mark.parametrize(("status", "kind", "cls"), [
    (400, "invalid_request_error", InvalidRequest),
    (401, "authentication_error", AuthenticationFailed),
    (402, "billing_error", PermissionDenied),
    (403, "permission_error", PermissionDenied),
    (404, "not_found_error", NotFound),
    (413, "request_too_large", RequestTooLarge),
    (429, "rate_limit_error", RateLimited),
    (500, "api_error", ServerError),
    (503, "api_error", ServiceUnavailable),
    (504, "timeout_error", UpstreamTimeout),
    (529, "overloaded_error", Overloaded),
    # The status decides; the structured type refines it when it says more.
    (500, "overloaded_error", Overloaded),
    (400, "rate_limit_error", RateLimited),
    (429, "invalid_request_error", RateLimited),
    (529, "unknown_future_error", Overloaded),
])
def test_decode_error_mapping(status: int, kind: str, cls: type[TurnoutError]) -> None:
    error = _decode(status, kind, headers={"retry-after": "7"})
    assert type(error) is cls
    assert error.origin == "upstream"
    assert error.upstream_status == status
    assert error.retry_after == 7.0
    assert error.message == "msg"


@pytest.mark.parametrize("message", [
    "prompt is too long: 208310 tokens > 200000 maximum",
    "input length and `max_tokens` exceed context limit: 197626 + 8192 > 200000, "
    "decrease input length or `max_tokens` and try again",
])
def test_context_window_from_message_text(message: str) -> None:
    assert type(_decode(400, "invalid_request_error", message)) is ContextWindowExceeded


def test_other_invalid_requests_stay_invalid_requests() -> None:
    error = _decode(400, "invalid_request_error", "max_tokens: Field required")
    assert type(error) is InvalidRequest


def test_non_json_error_body() -> None:
    error = DIALECT.decode_error(502, {"retry-after-ms": "1500"},
                                 b"<html>Bad Gateway</html>")
    assert type(error) is ServerError
    assert error.message == "Anthropic returned HTTP 502: <html>Bad Gateway</html>"
    assert error.retry_after == 1.5
    assert type(DIALECT.decode_error(401, {}, b"")) is AuthenticationFailed
