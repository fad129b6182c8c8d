"""The closed error taxonomy.

Every error knows its HTTP status, whether another attempt may succeed (`retryable`), a
stable `code`, and where it came from (`origin`: the gateway itself or an upstream), so that
breakers count only real upstream outcomes. Dialects map provider errors into these classes
once, at their boundary; inbound dialects map these classes to the client's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Origin = Literal["gateway", "upstream"]
AttemptKind = Literal["first", "retry", "fallback", "hedge"]


class TurnoutError(Exception):
    """Base of every error the engine raises or returns."""

    status: int = 500
    code: str = "internal_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        origin: Origin = "gateway",
        param: str | None = None,
        provider: str | None = None,
        upstream_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.origin: Origin = origin
        self.param = param
        self.provider = provider
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        """Seconds the upstream asked us to wait, from `Retry-After` and similar headers."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, origin={self.origin!r})"


# --- caller errors: never retried, never sent down a fallback chain -------------------------

class InvalidRequest(TurnoutError):
    status, code = 400, "invalid_request"


class UnsupportedFeature(InvalidRequest):
    """The request uses something the serving dialect cannot express."""

    code = "unsupported_feature"


class ContextWindowExceeded(InvalidRequest):
    """The prompt does not fit the model; only a larger-context target may help."""

    code = "context_length_exceeded"


class ContentFiltered(TurnoutError):
    status, code = 400, "content_filtered"


class AuthenticationFailed(TurnoutError):
    status, code = 401, "authentication_failed"


class PermissionDenied(TurnoutError):
    status, code = 403, "permission_denied"


class NotFound(TurnoutError):
    status, code = 404, "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class RequestTooLarge(TurnoutError):
    status, code = 413, "request_too_large"


class Unprocessable(TurnoutError):
    status, code = 422, "unprocessable_entity"


class ClientClosed(TurnoutError):
    status, code = 499, "client_closed_request"


# --- upstream trouble: another attempt or target may succeed --------------------------------

class RateLimited(TurnoutError):
    status, code, retryable = 429, "rate_limited", True


class BudgetExhausted(RateLimited):
    """A hard budget has no room for this call (OpenAI's `insufficient_quota`). Raised by
    the gateway before any attempt: waiting helps only once the budget resets, so no
    retry, and the message names the budget and when it resets."""

    code, retryable = "insufficient_quota", False


class Overloaded(TurnoutError):
    status, code, retryable = 529, "overloaded", True


class ServerError(TurnoutError):
    status, code, retryable = 502, "upstream_server_error", True


class ServiceUnavailable(ServerError):
    status, code = 503, "service_unavailable"


class UpstreamTimeout(TurnoutError):
    status, code, retryable = 504, "upstream_timeout", True


class ConnectionFailed(TurnoutError):
    status, code, retryable = 502, "upstream_connection_error", True


class MalformedResponse(TurnoutError):
    status, code, retryable = 502, "malformed_upstream_response", True


class InternalError(TurnoutError):
    status, code = 500, "internal_error"


@dataclass(slots=True)
class Attempt:
    """One upstream attempt, as recorded in a request's attempt log."""

    target: str
    outcome: Literal["ok", "error", "cancelled", "skipped"]
    error: TurnoutError | None = None
    latency_s: float = 0.0
    kind: AttemptKind = "first"


class AllAttemptsFailed(TurnoutError):
    """Every target of a route failed. Status and code follow the most telling attempt:
    the last upstream error, so a client sees 429 when everything was rate limited."""

    def __init__(self, attempts: list[Attempt], message: str | None = None) -> None:
        errors = [a.error for a in attempts if a.error is not None]
        last = errors[-1] if errors else None
        summary = "; ".join(f"{a.target}: {a.error.code if a.error else a.outcome}"
                            for a in attempts)
        detail = f"; last error: {last.message}" if last is not None else ""
        super().__init__(
            message or f"all {len(attempts)} attempts failed ({summary}){detail}",
            origin="upstream" if last and last.origin == "upstream" else "gateway",
            retry_after=last.retry_after if last else None,
        )
        self.attempts = attempts
        self.last_error = last
        self.status = last.status if last else 502
        self.code = last.code if last else "all_attempts_failed"
        self.retryable = bool(last and last.retryable)


_BY_STATUS: dict[int, type[TurnoutError]] = {
    400: InvalidRequest, 401: AuthenticationFailed, 403: PermissionDenied, 404: NotFound,
    408: UpstreamTimeout, 409: ServerError, 413: RequestTooLarge, 422: Unprocessable,
    429: RateLimited, 500: ServerError, 502: ServerError, 503: ServiceUnavailable,
    504: UpstreamTimeout, 529: Overloaded,
}


def error_class_for_status(status: int) -> type[TurnoutError]:
    """The taxonomy class for an upstream HTTP status (dialects refine it from the body)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return InvalidRequest
