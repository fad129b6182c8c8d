"""HTTP handlers: decode the client's dialect, call the engine, encode the answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from turnout.core.errors import (
    AuthenticationFailed,
    InternalError,
    InvalidRequest,
    RequestTooLarge,
    TurnoutError,
)
from turnout.core.request import ChatRequest
from turnout.dialects.base import Dialect
from turnout.engine.context import CallContext, RequestIds
from turnout.engine.engine import Engine
from turnout.engine.outcome import Outcome, StreamOutcome
from turnout.gateway.auth import GatewayKeys

_log = logging.getLogger("turnout.gateway")
_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"}


@dataclass(slots=True)
class ChatHandler:
    """Serves one inbound dialect (`/v1/chat/completions` or `/v1/messages`)."""

    dialect: Dialect
    engine: Engine
    keys: GatewayKeys
    max_body_bytes: int
    request_ids: RequestIds = field(default_factory=RequestIds)

    async def handle(self, http: web.Request) -> web.StreamResponse:
        """The route handler. Registered as this bound coroutine method, not as the instance:
        aiohttp wraps non-coroutine callables in a deprecated (and slower) shim."""
        try:
            principal = self.keys.authenticate(http.headers)
            if principal is None:
                raise AuthenticationFailed("Invalid or missing gateway API key.")
            request = self.dialect.decode_request(await self._read_json(http))
            ctx = CallContext(self.request_ids(), principal=principal,
                              timeout_s=_client_timeout(http.headers))
            if request.stream:
                # Errors before the first event still become a normal error response.
                stream = await self.engine.stream(request, ctx)
            else:
                outcome = await self.engine.chat(request, ctx)
                body = orjson.dumps(self.dialect.encode_response(outcome.response))
                return web.Response(body=body, content_type=_JSON,
                                    headers=_route_headers(outcome, ctx))
        except TurnoutError as error:
            return self.error_response(error)
        except Exception:
            # A bug, not the client's fault: still answer in the client's dialect, not HTML.
            _log.exception("unexpected error serving %s", http.path)
            return self.error_response(InternalError("Internal error in the gateway."))
        return await self._stream(http, request, stream, ctx)

    async def _stream(
        self, http: web.Request, request: ChatRequest, outcome: StreamOutcome, ctx: CallContext
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={**_SSE_HEADERS, **_route_headers(outcome, ctx)})
        try:
            encoder = self.dialect.stream_encoder(request)
            encode = encoder.encode
            await response.prepare(http)
            try:
                async for batch in outcome.batches:
                    # One write per upstream read: a write per event would cost a system
                    # call each (measured: a third of the gateway's stream CPU).
                    data = b"".join([encode(event) for event in batch])
                    if data:
                        await response.write(data)
                tail = encoder.done()
                if tail:
                    await response.write(tail)
            except TurnoutError as error:
                # After the first byte the status is sent: end with the dialect's error event.
                await response.write(encoder.encode_error(error))
            except ConnectionResetError:
                raise
            except Exception:
                _log.exception("unexpected error streaming %s", http.path)
                await response.write(encoder.encode_error(
                    InternalError("Internal error in the gateway.")))
            await response.write_eof()
        except ConnectionResetError:
            # The client went away (before or during the stream): nothing more can be sent.
            # Closing the batches (below) cancels the upstream call.
            pass
        finally:
            await outcome.batches.aclose()
        return response

    async def _read_json(self, http: web.Request) -> object:
        if http.content_length is not None and http.content_length > self.max_body_bytes:
            raise RequestTooLarge(f"Request body exceeds {self.max_body_bytes} bytes.")
        try:
            raw = await http.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestTooLarge(f"Request body exceeds {self.max_body_bytes} bytes.") from None
        if len(raw) > self.max_body_bytes:
            raise RequestTooLarge(f"Request body exceeds {self.max_body_bytes} bytes.")
        if not raw:
            raise InvalidRequest("Request body is empty; expected a JSON object.")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"Request body is not valid JSON: {exc}") from None

    def error_response(self, error: TurnoutError) -> web.Response:
        status, headers, body = self.dialect.encode_error(error)
        return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON,
                            headers=headers)


def _route_headers(outcome: Outcome, ctx: CallContext) -> dict[str, str]:
    deployment = outcome.deployment
    headers = {
        "x-request-id": ctx.request_id,
        "x-turnout-deployment": deployment.id,
        "x-turnout-provider": deployment.provider,
        "x-turnout-model": deployment.target.model,
        "x-turnout-attempts": str(len(ctx.attempts)),
    }
    if ctx.max_tokens_capped is not None:
        headers["x-turnout-max-tokens-capped"] = str(ctx.max_tokens_capped)
    return headers


def _client_timeout(headers: Mapping[str, str]) -> float | None:
    value = headers.get("x-turnout-timeout")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidRequest("x-turnout-timeout must be a number of seconds.",
                             param="x-turnout-timeout") from None
    if not 0 < seconds <= 86400:
        raise InvalidRequest("x-turnout-timeout must be between 0 and 86400 seconds.",
                             param="x-turnout-timeout")
    return seconds


def models_payload(aliases: list[str], anthropic: bool) -> bytes:
    """`GET /v1/models` in the caller's dialect (Anthropic SDKs send `anthropic-version`)."""
    now = int(time.time())
    if anthropic:
        data = [{"type": "model", "id": a, "display_name": a,
                 "created_at": "1970-01-01T00:00:00Z"} for a in aliases]
        return orjson.dumps({"data": data, "has_more": False,
                             "first_id": aliases[0] if aliases else None,
                             "last_id": aliases[-1] if aliases else None})
    return orjson.dumps({"object": "list", "data": [
        {"id": a, "object": "model", "created": now, "owned_by": "turnout"} for a in aliases]})
