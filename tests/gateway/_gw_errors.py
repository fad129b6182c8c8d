"""Raw HTTP to the gateway's two dialect endpoints, and checks of each dialect's exact error
shape (OpenAI: `{"error": {message, type, param, code}}`; Anthropic:
`{"type": "error", "error": {type, message}}`)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from _gw_harness import Gateway

Client = Literal["openai", "anthropic"]
CLIENTS: tuple[Client, ...] = ("openai", "anthropic")
ENDPOINT = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}

# Anthropic's `error.type` for each status its API documents.
ANTHROPIC_TYPE = {400: "invalid_request_error", 401: "authentication_error",
                  403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                  429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
# OpenAI's `error.type` values for the statuses clients branch on.
OPENAI_TYPE = {400: "invalid_request_error", 401: "authentication_error",
               404: "not_found_error", 429: "rate_limit_error"}
SHUTDOWN_STATUS = {"openai": 503, "anthropic": 529}
"""The dialect's 503 for requests a shutdown refuses or cuts: Anthropic reports every
overload, 503 included, as its 529."""


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


def valid_body(client: Client, model: str = "oa", **changes: Any) -> dict[str, Any]:
    """A valid request for `client`'s endpoint, with top-level keys replaced (a value of
    `...` removes the key)."""
    body: dict[str, Any] = {"model": model,
                            "messages": [{"role": "user", "content": "hello there"}]}
    if client == "anthropic":
        body["max_tokens"] = 32
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


async def post(gw: Gateway, client: Client, data: bytes | dict[str, Any] | AsyncIterable[bytes],
               headers: Mapping[str, str] | None = None, *, path: str | None = None) -> Reply:
    """POST `data` (a dict is sent as JSON) and read the reply as JSON."""
    sent = {"Content-Type": "application/json",
            **(ANTHROPIC_VERSION if client == "anthropic" else {}), **(headers or {})}
    payload = orjson.dumps(data) if isinstance(data, dict) else data
    async with gw.http.post(gw.url + (path or ENDPOINT[client]), data=payload,
                            headers=sent) as response:
        return await read(response)


async def read(response: Any) -> Reply:
    assert response.content_type == "application/json", await response.text()
    return Reply(response.status, response.headers, orjson.loads(await response.read()))


def error_of(client: Client, reply: Reply, status: int) -> dict[str, Any]:
    """Check the reply is `status` in `client`'s exact error shape; return the inner error."""
    assert reply.status == status, reply.body
    body = reply.body
    if client == "openai":
        assert set(body) == {"error"}
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["param"] is None or isinstance(error["param"], str)
        assert isinstance(error["code"], str) and error["code"]
        if status in OPENAI_TYPE:
            assert error["type"] == OPENAI_TYPE[status]
    else:
        # Anthropic may add a top-level `request_id`; the rest is fixed.
        assert set(body) - {"request_id"} == {"type", "error"}
        assert body["type"] == "error"
        error = body["error"]
        assert set(error) == {"type", "message"}
        if status in ANTHROPIC_TYPE:
            assert error["type"] == ANTHROPIC_TYPE[status]
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


async def assert_healthy(gw: Gateway, client: Client,
                         headers: Mapping[str, str] | None = None) -> None:
    """`/healthz` answers and a normal request still succeeds."""
    async with gw.http.get(gw.url + "/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
    reply = await post(gw, client, valid_body(client), headers)
    assert reply.status == 200, reply.body
    if client == "openai":
        assert reply.body["choices"][0]["message"]["content"].endswith("hello there")
    else:
        assert reply.body["content"][0]["text"].endswith("hello there")


def last_event(client: Client, body: bytes) -> dict[str, Any]:
    """The final SSE event of a stream's `body`, which must be the dialect's error event
    (OpenAI: a `data:` line with no `[DONE]` anywhere; Anthropic: `event: error`)."""
    *_, last = body.strip().split(b"\n\n")
    if client == "openai":
        assert last.startswith(b"data: ") and b"[DONE]" not in body
        return dict(orjson.loads(last.removeprefix(b"data: ")))
    kind, data = last.split(b"\n")
    assert kind == b"event: error"
    return dict(orjson.loads(data.removeprefix(b"data: ")))


def assert_shutdown_event(client: Client, event: dict[str, Any]) -> None:
    """`event` is the dialect's error event for a stream a shutdown cut."""
    if client == "openai":
        assert event["error"]["code"] == "service_unavailable"
        assert event["error"]["type"] == "server_error"
    else:
        assert event["type"] == "error"
        assert event["error"]["type"] == "overloaded_error"
    assert "shutting down" in event["error"]["message"]
