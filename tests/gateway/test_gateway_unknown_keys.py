"""One rule for keys at every level of a request, through the gateway, in each client
dialect's error shape, stream or not: keys the API documents as advisory (cache hints,
citations) are accepted; any other unknown key, top level or inside a content block, is a
400 naming its JSON path, and nothing goes upstream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _gw_errors import ANTHROPIC_VERSION, ENDPOINT, Client, error_of, post, valid_body
from _gw_harness import Gateway

from turnout.sim.server import RunningSimulator

STREAM = [pytest.param(False, id="non-stream"), pytest.param(True, id="stream")]
CACHE = {"cache_control": {"type": "ephemeral"}}

UNKNOWN: dict[Client, list[tuple[dict[str, Any], str]]] = {
    "openai": [
        ({"frobnicate": 1}, "frobnicate"),
        ({"messages": [{"role": "user", "content": "hi", "colour": 1}]}, "messages[0].colour"),
        ({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi", "colour": 1}]}]}, "messages[0].content[0].colour"),
        ({"tools": [{"type": "function", "function": {"name": "f", "returns": {}}}]},
         "tools[0].function.returns"),
    ],
    "anthropic": [
        ({"frobnicate": 1}, "frobnicate"),
        ({"messages": [{"role": "user", "content": "hi", "colour": 1}]}, "messages.0.colour"),
        ({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi", "colour": 1}]}]}, "messages.0.content.0.colour"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                       {"role": "assistant", "content": [
                           {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {},
                            "colour": 1}]}]}, "messages.1.content.0.colour"),
        ({"system": [{"type": "text", "text": "Be brief.", "colour": 1}]}, "system.0.colour"),
    ],
}

ADVISORY: dict[Client, dict[str, Any]] = {
    "openai": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hello there", **CACHE}]}]},
    "anthropic": {
        "system": [{"type": "text", "text": "Be brief.", "citations": None, **CACHE}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hello there", "citations": None, **CACHE}]}],
        **CACHE},
}


def cases() -> list[Any]:
    return [pytest.param(client, changes, param, id=f"{client}-{param}")
            for client, items in UNKNOWN.items() for changes, param in items]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(("client", "changes", "param"), cases())
async def test_unknown_key_is_a_400_naming_its_path(
        gateway: Gateway, sims: dict[str, RunningSimulator], client: Client,
        changes: dict[str, Any], param: str, stream: bool) -> None:
    body = valid_body(client, stream=stream, **changes)
    error = error_of(client, await post(gateway, client, body), 400)
    assert error["type"] == "invalid_request_error"
    if client == "openai":
        assert error["param"] == param
        assert error["code"] == "invalid_request"
    else:
        assert error["message"] == f"{param}: Extra inputs are not permitted (unknown parameter)"
    assert all(not sim.requests for sim in sims.values()), "bad input went upstream"


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", ["openai", "anthropic"])
async def test_advisory_keys_in_blocks_are_accepted(gateway: Gateway, client: Client,
                                                    stream: bool) -> None:
    body = orjson.dumps(valid_body(client, stream=stream, **ADVISORY[client]))
    headers = {"Content-Type": "application/json", **(ANTHROPIC_VERSION if client == "anthropic"
                                                      else {})}
    async with gateway.http.post(gateway.url + ENDPOINT[client], data=body,
                                 headers=headers) as response:
        text = await response.text()
        assert response.status == 200, text
    assert ("data: " in text) == stream
    assert "there" in text  # the simulator echoes the question (in pieces, streamed)
