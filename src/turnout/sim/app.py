"""The simulator web app: a provider's chat endpoints plus a small JSON control API.

Requests are decoded and answered through the same dialects the gateway uses, so the
simulators speak the real wire formats. Faults come from the app's `FaultQueue` (filled
in-process or through `POST /_sim/faults`) or, for one request, from an `x-sim-fault` header.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pydantic
from aiohttp import web
from multidict import CIMultiDict

from turnout.core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    TurnoutError,
)
from turnout.core.retry_after import parse_retry_after
from turnout.dialects.registry import get_dialect
from turnout.sim.faults import Fault
from turnout.sim.responder import respond
from turnout.sim.state import SIMULATOR, RecordedRequest, SimulatorState, Sleep
from turnout.sim.stream import abort_connection, write_stream

DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "openai_chat": ("gpt-4o-mini", "gpt-4o"),
    "anthropic_messages": ("claude-sonnet-4-5", "claude-haiku-4-5"),
    "gemini": ("gemini-2.5-flash", "gemini-2.5-pro"),
}
_MAX_BODY = 64 * 1024 * 1024  # images travel inline as base64
_NOT_JSON = object()


def create_simulator_app(
    dialect: str,
    name: str,
    *,
    chunk_words: int = 1,
    record_requests: bool = True,
    api_key: str | None = None,
    models: Sequence[str] | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """A simulator of one provider speaking `dialect` (`openai_chat`, `anthropic_messages`,
    `gemini`), answering as `name`. `chunk_words`: words per streamed text delta.
    `record_requests=False` skips the request log (benchmarks). `api_key`: the only key
    accepted (any key otherwise). `sleep`/`clock` are injectable for tests."""
    state = SimulatorState(
        dialect_name=dialect, dialect=get_dialect(dialect), name=name,
        chunk_words=max(1, chunk_words), record_requests=record_requests, api_key=api_key,
        models=tuple(models) if models is not None else DEFAULT_MODELS.get(dialect, ()),
        sleep=sleep, clock=clock,
    )
    app = web.Application(client_max_size=_MAX_BODY)
    app[SIMULATOR] = state
    app.on_shutdown.append(_release_hanging)
    if dialect == "openai_chat":
        app.router.add_post("/v1/chat/completions", _chat)
        app.router.add_get("/v1/models", _openai_models)
    elif dialect == "anthropic_messages":
        app.router.add_post("/v1/messages", _chat)
    else:  # Gemini serves both API versions; the google-genai SDK defaults to v1
        app.router.add_post("/v1beta/models/{target}", _gemini)
        app.router.add_post("/v1/models/{target}", _gemini)
    app.router.add_post("/_sim/faults", _add_faults)
    app.router.add_get("/_sim/faults", _list_faults)
    app.router.add_delete("/_sim/faults", _clear_faults)
    app.router.add_get("/_sim/requests", _list_requests)
    app.router.add_delete("/_sim/requests", _clear_requests)
    app.router.add_post("/_sim/reset", _reset)
    return app


async def _release_hanging(app: web.Application) -> None:
    app[SIMULATOR].closing.set()


# --- provider endpoints -------------------------------------------------------------------

async def _chat(request: web.Request) -> web.StreamResponse:
    return await _serve_chat(request, url_model=None, url_stream=None, sse=True)


async def _gemini(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["target"].rpartition(":")
    if method not in ("generateContent", "streamGenerateContent") or not model:
        state = request.app[SIMULATOR]
        return _error_response(state, NotFound(f"Method not found: {request.path}"))
    stream = method == "streamGenerateContent"
    return await _serve_chat(request, url_model=model, url_stream=stream,
                             sse=request.query.get("alt") == "sse")


async def _serve_chat(request: web.Request, *, url_model: str | None, url_stream: bool | None,
                      sse: bool) -> web.StreamResponse:
    state = request.app[SIMULATOR]
    raw = await request.read()
    body = _parse_json(raw)
    record = _record(state, request, body) if state.record_requests else None
    denied = _check_auth(state, request)
    if denied is not None:
        return _error_response(state, denied)
    if not isinstance(body, dict):
        return _error_response(state, InvalidRequest("The request body is not a JSON object"))
    stream = url_stream if url_stream is not None else body.get("stream") is True
    model = url_model if url_model is not None else body.get("model")
    try:
        fault = _header_fault(request, model, stream) or state.faults.take(
            model if isinstance(model, str) else None, stream)
    except pydantic.ValidationError as exc:
        return _control_error(f"invalid x-sim-fault header: {exc}")
    if fault is not None:
        fault = fault.echoing(_presented_key(state, request))
        if record is not None:
            record.fault = fault.kind
        early = await _before_answer(request, state, fault, stream)
        if early is not None:
            return early
    try:
        chat_request = state.dialect.decode_request(body, model=url_model, stream=url_stream)
    except TurnoutError as exc:
        return _error_response(state, exc)
    response = respond(chat_request, sim_name=state.name, response_id=state.next_response_id(),
                       created=int(state.clock()))
    if chat_request.stream:
        try:
            return await write_stream(request, state, chat_request, response, fault, sse=sse)
        except ConnectionResetError:  # the client left mid-stream: nothing more to do
            return web.Response(status=499)
    payload = orjson.dumps(state.dialect.encode_response(response))
    if fault is not None and fault.kind == "slow_first_token" and fault.seconds:
        await state.sleep(fault.seconds)
    if fault is not None and fault.kind == "malformed":
        payload = payload[: len(payload) // 2]
    if fault is not None and fault.kind == "reset":  # after_chunks > 0: reset mid-body
        return await _reset_mid_body(request, payload)
    return web.Response(body=payload, content_type="application/json")


async def _reset_mid_body(request: web.Request, payload: bytes) -> web.StreamResponse:
    """Send the headers (announcing the whole length) and half of `payload`, then drop the
    connection: a complete answer cut off in transit."""
    out = web.StreamResponse(headers={"Content-Type": "application/json"})
    out.content_length = len(payload)
    await out.prepare(request)
    await out.write(payload[: len(payload) // 2])
    abort_connection(request)
    return out


async def _before_answer(request: web.Request, state: SimulatorState, fault: Fault,
                         stream: bool) -> web.StreamResponse | None:
    """Apply the part of `fault` that comes before any answer; a response ends the request."""
    if fault.kind == "status":
        return _fault_status_response(state, fault)
    if fault.kind == "hang":
        await _hang(state, fault.seconds)
        abort_connection(request)
        return web.Response(status=504)  # never reaches the client: the connection is gone
    if fault.kind == "reset" and fault.after_chunks == 0:
        abort_connection(request)
        return web.Response(status=502)  # likewise
    if fault.kind == "latency" and fault.seconds:
        await state.sleep(fault.seconds)
    return None


async def _hang(state: SimulatorState, seconds: float | None) -> None:
    """Wait until the app shuts down, or `seconds` have passed when given."""
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(state.closing.wait())}
    if seconds is not None:
        waiters.add(asyncio.ensure_future(state.sleep(seconds)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _openai_models(request: web.Request) -> web.StreamResponse:
    state = request.app[SIMULATOR]
    denied = _check_auth(state, request)
    if denied is not None:
        return _error_response(state, denied)
    data = [{"id": m, "object": "model", "created": 0, "owned_by": state.name}
            for m in state.models]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}),
                        content_type="application/json")


def _check_auth(state: SimulatorState, request: web.Request) -> TurnoutError | None:
    """The error the real API gives for missing credentials, or None when they are fine."""
    key = _presented_key(state, request)
    if state.dialect_name == "openai_chat":
        if not key:
            return AuthenticationFailed(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    elif state.dialect_name == "anthropic_messages":
        if not key:
            return AuthenticationFailed("x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            return InvalidRequest("anthropic-version: header is required")
    elif not key:
        return PermissionDenied(
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to "
            "call this API.")
    if state.api_key is not None and key.strip() != state.api_key:
        return AuthenticationFailed("Incorrect API key provided.")
    return None


def _presented_key(state: SimulatorState, request: web.Request) -> str:
    """The API key a request carries where the provider expects it ('' if none)."""
    headers = request.headers
    if state.dialect_name == "openai_chat":
        return _bearer(headers.get("Authorization", ""))
    if state.dialect_name == "anthropic_messages":
        # Current Anthropic SDKs send an API key as a bearer token; older ones as x-api-key.
        return headers.get("x-api-key", "") or _bearer(headers.get("Authorization", ""))
    return headers.get("x-goog-api-key") or request.query.get("key", "")


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _header_fault(request: web.Request, model: Any, stream: bool) -> Fault | None:
    text = request.headers.get("x-sim-fault")
    if not text:
        return None
    fault = Fault.model_validate_json(text)
    return fault if fault.applies_to(model if isinstance(model, str) else None, stream) else None


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return _NOT_JSON
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def _record(state: SimulatorState, request: web.Request, body: Any) -> RecordedRequest:
    entry = RecordedRequest(
        method=request.method, path=request.path, query=dict(request.query),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=None if body is _NOT_JSON else body, time=state.clock(),
    )
    state.requests.append(entry)
    return entry


def _error_response(state: SimulatorState, error: TurnoutError, *, status: int | None = None,
                    headers: dict[str, str] | None = None, body: Any = None) -> web.Response:
    """An error in the dialect's shape; a fault may override status, headers and body."""
    code, error_headers, error_body = state.dialect.encode_error(error)
    merged = CIMultiDict(error_headers)
    merged.update(headers or {})  # a fault's `retry-after` replaces the dialect's `Retry-After`
    if isinstance(body, str):
        payload = body.encode()
        merged.setdefault("Content-Type", "text/plain; charset=utf-8")
    else:
        payload = orjson.dumps(error_body if body is None else body)
        merged.setdefault("Content-Type", "application/json")
    return web.Response(status=status or code, body=payload, headers=merged)


def _fault_status_response(state: SimulatorState, fault: Fault) -> web.Response:
    error = fault.to_error(state.name)
    error.retry_after = parse_retry_after({k.lower(): v for k, v in fault.headers.items()})
    return _error_response(state, error, status=fault.status, headers=fault.headers,
                           body=fault.body)


# --- control API ----------------------------------------------------------------------------

def _control_error(message: str) -> web.Response:
    return web.Response(status=400, body=orjson.dumps({"error": {"message": message}}),
                        content_type="application/json")


def _json(value: Any) -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type="application/json")


async def _add_faults(request: web.Request) -> web.StreamResponse:
    state = request.app[SIMULATOR]
    body = _parse_json(await request.read())
    items = body if isinstance(body, list) else [body]
    try:
        faults = [Fault.model_validate(item) for item in items]
    except pydantic.ValidationError as exc:
        return _control_error(str(exc))
    state.faults.add(faults)
    return _json({"queued": len(state.faults)})


async def _list_faults(request: web.Request) -> web.StreamResponse:
    pending = request.app[SIMULATOR].faults.pending()
    return _json([{"fault": q.fault.model_dump(mode="json"), "remaining": q.remaining}
                  for q in pending])


async def _clear_faults(request: web.Request) -> web.StreamResponse:
    request.app[SIMULATOR].faults.clear()
    return _json({"queued": 0})


async def _list_requests(request: web.Request) -> web.StreamResponse:
    return _json(request.app[SIMULATOR].requests)


async def _clear_requests(request: web.Request) -> web.StreamResponse:
    request.app[SIMULATOR].requests.clear()
    return _json({"cleared": True})


async def _reset(request: web.Request) -> web.StreamResponse:
    request.app[SIMULATOR].reset()
    return _json({"reset": True})
