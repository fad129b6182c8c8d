"""Errors: OpenAI-shaped error responses for clients; upstream errors into the taxonomy."""

from __future__ import annotations

import orjson
import pytest

from turnout.core.errors import (
    AllAttemptsFailed,
    Attempt,
    AuthenticationFailed,
    ContentFiltered,
    ContextWindowExceeded,
    InternalError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    ServerError,
    ServiceUnavailable,
    TurnoutError,
    Unprocessable,
    UnsupportedFeature,
    UpstreamTimeout,
)
from turnout.dialects.openai_chat import DIALECT


@pytest.mark.parametrize(("error", "status", "kind"), [
    (InvalidRequest("bad", param="messages[0].role"), 400, "invalid_request_error"),
    (UnsupportedFeature("no n", param="n"), 400, "invalid_request_error"),
    (AuthenticationFailed("who?"), 401, "authentication_error"),
    (PermissionDenied("no"), 403, "permission_error"),
    (NotFound("nothing"), 404, "not_found_error"),
    (ModelNotFound("no model"), 404, "not_found_error"),
    (RequestTooLarge("big"), 413, "invalid_request_error"),
    (Unprocessable("hm"), 422, "invalid_request_error"),
    (RateLimited("slow"), 429, "rate_limit_error"),
    (InternalError("oops"), 500, "server_error"),
    (ServerError("upstream 5xx"), 502, "server_error"),
    (ServiceUnavailable("down"), 503, "server_error"),
    (UpstreamTimeout("late"), 504, "server_error"),
    (Overloaded("busy"), 529, "overloaded_error"),
])
def test_encode_error_status_and_type(error: TurnoutError, status: int, kind: str) -> None:
    got_status, headers, body = DIALECT.encode_error(error)
    assert got_status == status and headers == {}
    assert body == {"error": {"message": error.message, "type": kind, "param": error.param,
                              "code": body["error"]["code"]}}
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_encode_error_codes() -> None:
    assert DIALECT.encode_error(ModelNotFound("x"))[2]["error"]["code"] == "model_not_found"
    assert DIALECT.encode_error(RateLimited("x"))[2]["error"]["code"] == "rate_limit_exceeded"
    assert DIALECT.encode_error(ContextWindowExceeded("x"))[2]["error"]["code"] == \
        "context_length_exceeded"


@pytest.mark.parametrize(("retry_after", "header"), [(2.0, "2"), (0.2, "1"), (30.5, "31"),
                                                     (0.0, "0")])
def test_retry_after_header_rounds_up(retry_after: float, header: str) -> None:
    _, headers, _ = DIALECT.encode_error(RateLimited("slow", retry_after=retry_after))
    assert headers == {"Retry-After": header}


def test_all_attempts_failed_uses_the_last_error() -> None:
    error = AllAttemptsFailed([
        Attempt("a", "error", ServerError("x", origin="upstream")),
        Attempt("b", "error", RateLimited("y", origin="upstream", retry_after=3)),
    ])
    status, headers, body = DIALECT.encode_error(error)
    assert status == 429 and headers == {"Retry-After": "3"}
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "rate_limit_exceeded"


# --- decoding upstream errors ----------------------------------------------------------------

def openai_error(message: str, kind: str, code: str | None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}})


@pytest.mark.parametrize(("status", "body", "cls"), [
    (400, openai_error("max ctx", "invalid_request_error", "context_length_exceeded",
                       "messages"), ContextWindowExceeded),
    (400, openai_error("bad", "invalid_request_error", None), InvalidRequest),
    (400, openai_error("flagged", "invalid_request_error", "content_policy_violation"),
     ContentFiltered),
    (400, openai_error("flagged", "invalid_request_error", "content_filter"), ContentFiltered),
    (401, openai_error("bad key", "invalid_request_error", "invalid_api_key"),
     AuthenticationFailed),
    (403, openai_error("region", "permission_error", None), PermissionDenied),
    (404, openai_error("The model `x` does not exist", "invalid_request_error",
                       "model_not_found"), ModelNotFound),
    (404, openai_error("no route", "invalid_request_error", None), NotFound),
    (429, openai_error("quota", "insufficient_quota", "insufficient_quota"), RateLimited),
    (429, openai_error("tpm", "tokens", "rate_limit_exceeded"), RateLimited),
    (500, openai_error("oops", "server_error", None), ServerError),
    (503, openai_error("down", "server_error", None), ServiceUnavailable),
    (529, openai_error("busy", "overloaded_error", None), Overloaded),
    # vLLM's flat error body and Ollama's string error.
    (400, orjson.dumps({"object": "error", "message": "too long", "type": "BadRequestError",
                        "param": None, "code": 400}), InvalidRequest),
    (404, orjson.dumps({"error": "model 'llama9' not found"}), NotFound),
    # llama.cpp's server, as the bundled local model answers a prompt longer than n_ctx.
    (400, orjson.dumps({"error": {
        "code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": 331,
        "n_ctx": 256, "message": "request (331 tokens) exceeds the available context size "
                                 "(256 tokens), try increasing it"}}), ContextWindowExceeded),
])
def test_decode_error_classes(status: int, body: bytes, cls: type[TurnoutError]) -> None:
    error = DIALECT.decode_error(status, {}, body)
    assert type(error) is cls
    assert error.origin == "upstream" and error.upstream_status == status
    assert error.message and "{" not in error.message


def test_decode_error_keeps_message_and_param() -> None:
    error = DIALECT.decode_error(400, {}, openai_error("This model's maximum context length is "
                                                       "8192 tokens", "invalid_request_error",
                                                       "context_length_exceeded", "messages"))
    assert error.message.startswith("This model's maximum context length")
    assert error.param == "messages"


def test_decode_error_retry_after_from_headers() -> None:
    headers = {"Retry-After": "7", "Content-Type": "application/json"}
    error = DIALECT.decode_error(429, headers, openai_error("slow", "requests",
                                                            "rate_limit_exceeded"))
    assert error.retry_after == 7.0 and error.retryable
    reset = DIALECT.decode_error(429, {"x-ratelimit-reset-requests": "1m30s"}, b"{}")
    assert reset.retry_after == 90.0


def test_non_json_error_keeps_status_class_and_truncates() -> None:
    error = DIALECT.decode_error(502, {}, b"<html>Bad Gateway</html>" + b"x" * 5000)
    assert type(error) is ServerError
    assert error.message.startswith("<html>Bad Gateway") and len(error.message) <= 500
    empty = DIALECT.decode_error(503, {}, b"")
    assert type(empty) is ServiceUnavailable and "503" in empty.message


def test_our_own_error_bodies_map_back_exactly() -> None:
    """A Turnout gateway upstream of another: encode_error -> decode_error keeps the class."""
    for error in (RateLimited("a"), ContextWindowExceeded("b"), ModelNotFound("c"),
                  UnsupportedFeature("d", param="n"), ContentFiltered("e"), Overloaded("f")):
        status, headers, body = DIALECT.encode_error(error)
        decoded = DIALECT.decode_error(status, headers, orjson.dumps(body))
        assert type(decoded) is type(error)
        assert decoded.param == error.param
