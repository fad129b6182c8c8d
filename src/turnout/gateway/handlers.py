"""HTTP handlers: decode the client's dialect, call the engine, encode the answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from turnout.core.errors import (
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
from turnout.gateway.auth import presented_key
from turnout.gateway.drain import Drain, Ticket, shutting_down

_log = logging.getLogger("turnout.gateway")
_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"}
# A client's own request id is kept when it could not smuggle anything into a header or a
# log line: bounded, and from an alphabet without spaces, quotes or control characters.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch


@dataclass(slots=True)
class ChatHandler:
    """Serves one inbound dialect (`/v1/chat/completions` or `/v1/messages`)."""

    dialect: Dialect
    engine: Engine
    max_body_bytes: int
    request_ids: RequestIds = field(default_factory=RequestIds)
    drain: Drain = field(default_factory=Drain)

    async def handle(self, http: web.Request) -> web.StreamResponse:
        """The route handler. Registered as this bound coroutine method, not as the instance:
        aiohttp wraps non-coroutine callables in a deprecated (and slower) shim."""
        request_id = self.request_id(http.headers)
        drain = self.drain
        if drain.draining:
            return self._shutdown_response(request_id)
        ticket = drain.enter()
        try:
            return await self._serve(http, request_id, ticket)
        finally:
            drain.leave(ticket)

    async def _serve(self, http: web.Request, request_id: str,
                     ticket: Ticket) -> web.StreamResponse:
        ctx = ticket.ctx = CallContext(request_id, credential=presented_key(http.headers),
                                       caller="http")
        try:
            # Authenticated on the headers alone, before the body is read.
            await self.engine.authenticate(ctx)
            request = self.dialect.decode_request(await self._read_json(http))
            ctx.timeout_s = _client_timeout(http.headers)
            conversation = http.headers.get("x-turnout-conversation-id")
            if conversation:  # checked and cut to size by the ledger, never refused
                ctx.conversation_id = conversation
            if request.stream:
                # Errors before the first event still become a normal error response.
                stream = await self.engine.stream(request, ctx)
            else:
                outcome = await self.engine.chat(request, ctx)
                body = orjson.dumps(self.dialect.encode_response(outcome.response))
                return web.Response(body=body, content_type=_JSON,
                                    headers=_route_headers(outcome, ctx))
        except TurnoutError as error:
            response = self.error_response(error, request_id)
            if ctx.response_headers:
                response.headers.update(ctx.response_headers)
            return response
        except Exception:
            # A bug, not the client's fault: still answer in the client's dialect, not HTML.
            _log.exception("unexpected error serving %s", http.path)
            return self.error_response(InternalError("Internal error in the gateway."),
                                       request_id)
        except asyncio.CancelledError:
            if not ticket.absorb_cancel():
                raise  # the client went away
            # The shutdown's drain deadline passed before an answer: say so, with a 503.
            return self._shutdown_response(request_id)
        return await self._stream(http, request, stream, ctx, ticket)

    async def _stream(self, http: web.Request, request: ChatRequest, outcome: StreamOutcome,
                      ctx: CallContext, ticket: Ticket) -> web.StreamResponse:
        response = web.StreamResponse(headers={**_SSE_HEADERS, **_route_headers(outcome, ctx)})
        encoder = self.dialect.stream_encoder(request)
        try:
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
        except asyncio.CancelledError:
            if not ticket.absorb_cancel():
                raise  # the client went away
            if not response.prepared:  # cut while the headers were being sent
                return self._shutdown_response(ctx.request_id)
            # The shutdown's drain deadline passed mid-stream: end it as any failure after
            # the first byte ends, with the dialect's terminal error event.
            with contextlib.suppress(ConnectionResetError):
                await response.write(encoder.encode_error(shutting_down()))
                await response.write_eof()
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
            raise InvalidRequest(_json_problem(exc)) from None

    def request_id(self, headers: Mapping[str, str]) -> str:
        """The client's `x-request-id` when well-formed, else a new id (a malformed one is
        not worth failing the request for)."""
        given = headers.get("x-request-id")
        if given is not None and _CLIENT_REQUEST_ID(given):
            return given
        return self.request_ids()

    def _shutdown_response(self, request_id: str) -> web.Response:
        """The dialect's 503 for a request a shutdown refuses or cuts."""
        response = self.error_response(shutting_down(), request_id)
        response.force_close()  # the client's next request should reach another replica
        return response

    def error_response(self, error: TurnoutError, request_id: str | None = None
                       ) -> web.Response:
        """`error` in this dialect's shape, with `x-request-id` when one is given."""
        status, headers, body = self.dialect.encode_error(error)
        if request_id is not None:
            headers = {**headers, "x-request-id": request_id}
        return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON,
                            headers=headers)


def _json_problem(exc: orjson.JSONDecodeError) -> str:
    """What is wrong with the client's JSON, from orjson's reason and position (which help
    the client fix it), in our words."""
    if exc.msg.startswith("str is not valid UTF-8"):
        # orjson's wording for undecodable bytes names its own internals ("str",
        # "surrogates") and a position that is always the start.
        return "Request body is not valid UTF-8."
    return f"Request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."


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
    if ctx.response_headers:
        headers.update(ctx.response_headers)
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
        return orjson.dumps({"data": [_anthropic_model(a) for a in aliases], "has_more": False,
                             "first_id": aliases[0] if aliases else None,
                             "last_id": aliases[-1] if aliases else None})
    return orjson.dumps({"object": "list", "data": [_openai_model(a, now) for a in aliases]})


def model_payload(alias: str, anthropic: bool) -> bytes:
    """`GET /v1/models/{alias}`: one entry of the listing, in the caller's dialect (the
    OpenAI SDK's `Model`, the Anthropic SDK's `ModelInfo`)."""
    if anthropic:
        return orjson.dumps(_anthropic_model(alias))
    return orjson.dumps(_openai_model(alias, int(time.time())))


def _openai_model(alias: str, created: int) -> dict[str, object]:
    return {"id": alias, "object": "model", "created": created, "owned_by": "turnout"}


def _anthropic_model(alias: str) -> dict[str, object]:
    # An alias has no release date: the epoch, as Anthropic documents for unknown ones.
    return {"type": "model", "id": alias, "display_name": alias,
            "created_at": "1970-01-01T00:00:00Z", "lifecycle": "active"}
