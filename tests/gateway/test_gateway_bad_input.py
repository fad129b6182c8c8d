"""Bad input on both dialect endpoints: each answered with the right status in the exact
error shape of the dialect the client spoke, never sent upstream, and the gateway still
healthy afterwards."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import openai
import orjson
import pytest
from _gw_errors import (
    CLIENTS,
    Client,
    assert_healthy,
    error_of,
    post,
    read,
    valid_body,
)
from _gw_harness import Gateway, MakeGateway

from turnout.sim.server import RunningSimulator

Body = bytes | dict[str, Any]


def _user(content: Any, role: str = "user") -> list[dict[str, Any]]:
    return [{"role": role, "content": content}]


def _bad_tools(client: Client) -> list[dict[str, Any]]:
    if client == "openai":
        return [{"type": "function"}]  # no `function` object
    return [{"description": "no name and no input_schema"}]


# name -> (body for a client, status, OpenAI `param` expected, or None for any)
CASES: dict[str, tuple[Callable[[Client], Body], int, str | None]] = {
    "invalid_json": (lambda c: b'{"model": "oa", "messages": [', 400, None),
    "trailing_garbage": (lambda c: b'{"model": "oa"} x', 400, None),
    "array": (lambda c: b'[{"model": "oa"}]', 400, None),
    "string": (lambda c: b'"hello"', 400, None),
    "number": (lambda c: b"42", 400, None),
    "null": (lambda c: b"null", 400, None),
    "empty": (lambda c: b"", 400, None),
    "whitespace": (lambda c: b"  \r\n ", 400, None),
    "deeply_nested": (lambda c: b"[" * 5000 + b"]" * 5000, 400, None),
    "invalid_utf8": (lambda c: b'{"model": "oa", "messages": [{"role": "user", '
                               b'"content": "caf\xe9 \xff\xfe"}]}', 400, None),
    "lone_surrogate": (lambda c: b'{"model": "oa", "messages": [{"role": "user", '
                                 b'"content": "\\ud800"}]}', 400, None),
    "missing_messages": (lambda c: valid_body(c, messages=...), 400, "messages"),
    "missing_model": (lambda c: valid_body(c, model=...), 400, "model"),
    "model_not_string": (lambda c: valid_body(c, model=5), 400, "model"),
    "messages_not_list": (lambda c: valid_body(c, messages="hi"), 400, "messages"),
    "message_not_object": (lambda c: valid_body(c, messages=[5]), 400, None),
    "empty_messages": (lambda c: valid_body(c, messages=[]), 400, None),
    "invalid_role": (lambda c: valid_body(c, messages=_user("hi", "wizard")), 400, None),
    "content_wrong_type": (lambda c: valid_body(c, messages=_user(5)), 400, None),
    "max_tokens_wrong_type": (lambda c: valid_body(c, max_tokens="ten"), 400, "max_tokens"),
    "max_tokens_negative": (lambda c: valid_body(c, max_tokens=-1), 400, "max_tokens"),
    "stream_wrong_type": (lambda c: valid_body(c, stream="yes"), 400, "stream"),
    "temperature_wrong_type": (lambda c: valid_body(c, temperature="hot"), 400, "temperature"),
    "tools_malformed": (lambda c: valid_body(c, tools=_bad_tools(c)), 400, None),
    "unknown_parameter": (lambda c: valid_body(c, frobnicate=1), 400, "frobnicate"),
    "n_2": (lambda c: valid_body(c, n=2), 400, "n"),
    "unknown_model": (lambda c: valid_body(c, model="no-such-model"), 404, "model"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("client", CLIENTS)
async def test_bad_request(gateway: Gateway, sims: dict[str, RunningSimulator],
                           client: Client, case: str) -> None:
    build, status, param = CASES[case]
    error = error_of(client, await post(gateway, client, build(client)), status)
    if client == "openai" and param is not None:
        assert error["param"] == param
    if case == "unknown_model":
        assert "no-such-model" in error["message"]
        if client == "openai":
            assert error["code"] == "model_not_found"
    assert all(not sim.requests for sim in sims.values()), "bad input went upstream"
    await assert_healthy(gateway, client)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"model": "oa", "messages": [',
     "Request body is not valid JSON: unexpected end of data (line 1, column 30)."),
    (b'{"model": "oa"}\n x',
     "Request body is not valid JSON: unexpected content after document (line 2, column 2)."),
    (b'{"model": "oa", "messages": [{"role": "user", "content": "caf\xe9"}]}',
     "Request body is not valid UTF-8."),
], ids=["truncated", "trailing_garbage", "invalid_utf8"])
@pytest.mark.parametrize("client", CLIENTS)
async def test_invalid_json_says_where_in_our_words(gateway: Gateway, client: Client,
                                                    body: bytes, message: str) -> None:
    """The reason and position help the caller fix the body; orjson's own phrasing
    ("(char 29)", "str is not valid UTF-8: surrogates not allowed") does not."""
    error = error_of(client, await post(gateway, client, body), 400)
    assert error["message"] == message


@pytest.mark.parametrize("client", CLIENTS)
async def test_unsupported_parameter_is_named(gateway: Gateway, client: Client) -> None:
    error = error_of(client, await post(gateway, client, valid_body(client, n=2)), 400)
    assert re.search(r"\bn\b", error["message"]), error["message"]


@pytest.mark.parametrize("value", ["soon", "0", "-5", "86401", "nan"])
@pytest.mark.parametrize("client", CLIENTS)
async def test_bad_timeout_header(gateway: Gateway, client: Client, value: str) -> None:
    reply = await post(gateway, client, valid_body(client), {"x-turnout-timeout": value})
    error = error_of(client, reply, 400)
    assert "x-turnout-timeout" in error["message"]
    if client == "openai":
        assert error["param"] == "x-turnout-timeout"
    reply = await post(gateway, client, valid_body(client), {"x-turnout-timeout": "30"})
    assert reply.status == 200


async def _chunks(total: int, piece: int = 1000) -> AsyncIterator[bytes]:
    head = b'{"model": "oa", "max_tokens": 16, "messages": [{"role": "user", "content": "'
    yield head
    left = total - len(head) - 4
    while left > 0:
        yield b"a" * min(piece, left)
        left -= piece
    yield b'"}]}'


def _sized_body(client: Client, size: int) -> bytes:
    """A valid request of exactly `size` bytes."""
    body = valid_body(client)
    base = len(orjson.dumps(body)) - len(b"hello there")
    body["messages"][0]["content"] = "a" * (size - base)
    raw = orjson.dumps(body)
    assert len(raw) == size
    return raw


LIMIT = 4096


@pytest.mark.parametrize("client", CLIENTS)
async def test_body_size_limit(make_gateway: MakeGateway, sims: dict[str, RunningSimulator],
                               client: Client) -> None:
    gw = await make_gateway(server={"max_body_bytes": LIMIT})
    # Exactly at the limit is fine; one byte more is not.
    assert (await post(gw, client, _sized_body(client, LIMIT))).status == 200
    sims["openai_chat"].requests.clear()
    error = error_of(client, await post(gw, client, _sized_body(client, LIMIT + 1)), 413)
    assert str(LIMIT) in error["message"]
    # Without Content-Length (chunked): the limit holds while reading.
    error_of(client, await post(gw, client, _chunks(LIMIT * 4)), 413)
    error_of(client, await post(gw, client, _chunks(LIMIT * 400, piece=64 * 1024)), 413)
    assert not sims["openai_chat"].requests
    await assert_healthy(gw, client)


@pytest.mark.parametrize("client", CLIENTS)
async def test_unknown_path_and_wrong_method_answer_json(gateway: Gateway,
                                                         client: Client) -> None:
    headers = {"anthropic-version": "2023-06-01"} if client == "anthropic" else {}
    async with gateway.http.get(gateway.url + "/v1/nothing-here", headers=headers) as resp:
        error = error_of(client, await read(resp), 404)
    assert "/v1/nothing-here" in error["message"]
    async with gateway.http.post(gateway.url + "/", headers=headers) as resp:
        error_of(client, await read(resp), 404)
    endpoint = "/v1/messages" if client == "anthropic" else "/v1/chat/completions"
    for method in ("GET", "PUT", "DELETE"):
        async with gateway.http.request(method, gateway.url + endpoint,
                                        headers=headers) as resp:
            reply = await read(resp)
            assert resp.headers["Allow"] == "POST"
        error = error_of(client, reply, 405)
        assert method in error["message"]
    async with gateway.http.post(gateway.url + "/healthz", headers=headers) as resp:
        reply = await read(resp)
        assert set(resp.headers["Allow"].split(", ")) == {"GET", "HEAD"}
    error_of(client, reply, 405)
    await assert_healthy(gateway, client)


async def test_openai_sdk_sees_unsupported_upstream_feature(
        gateway: Gateway, sims: dict[str, RunningSimulator]) -> None:
    # JSON-schema output cannot be expressed on Anthropic's Messages API (the catalog says
    # so too, which refuses the request before the dialect would).
    with pytest.raises(openai.BadRequestError) as info:
        await gateway.openai.chat.completions.create(
            model="an", messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {
                "name": "answer", "schema": {"type": "object"}}})
    assert info.value.status_code == 400
    assert info.value.code == "unsupported_feature"
    assert info.value.param == "response_format"
    assert "json_schema" in info.value.message
    assert "sim-anthropic/claude-haiku-4-5" in info.value.message
    # Gemini cannot forbid parallel function calls.
    with pytest.raises(openai.BadRequestError) as info:
        await gateway.openai.chat.completions.create(
            model="gm", messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {
                "type": "object", "properties": {}}}}],
            parallel_tool_calls=False)
    assert info.value.code == "unsupported_feature"
    assert info.value.param == "parallel_tool_calls"
    assert not sims["anthropic_messages"].requests and not sims["gemini"].requests
    await assert_healthy(gateway, "openai")


async def test_sdks_raise_their_own_error_types(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        await gateway.openai.chat.completions.create(
            model="missing", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError) as missing:
        await gateway.anthropic.messages.create(
            model="missing", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body == {"type": "error", "error": {
        "type": "not_found_error", "message": missing.value.body["error"]["message"]}}
    with pytest.raises(anthropic.BadRequestError):
        await gateway.anthropic.messages.create(
            model="an", max_tokens=8, messages=[{"role": "assistant", "content": "hi"},
                                                {"role": "wizard", "content": "x"}])
