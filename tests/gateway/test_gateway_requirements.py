"""A request's needs against its targets, end to end: prompts too long for every window,
an upstream's context overflow failing over, capabilities a target lacks (the default
local model) and `max_tokens` above a model's output limit. Catalog facts are used as
shipped: the `kind: openai` providers here are real catalog rows pointed at the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
from _gw_errors import CLIENTS, ENDPOINT, Client, error_of, post, valid_body
from _gw_harness import Gateway, base_config, compile_data, serve

from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

STREAM = [pytest.param(False, id="json"), pytest.param(True, id="sse")]
MiB = 1024 * 1024
OVERFLOW = {"kind": "status", "status": 400, "error": "context_length_exceeded"}

Build = Callable[..., Any]


@pytest.fixture
async def build(sims: dict[str, RunningSimulator]) -> AsyncIterator[Build]:
    """`await build(routes={...}, models={...}, local=False)`: a gateway whose extra
    providers `oai1` and `oai2` are `kind: openai` (catalog rows apply) served by the OpenAI
    simulator; `local=True` adds the built-in local model."""
    async with AsyncExitStack() as stack:

        async def make(routes: Mapping[str, Any], models: Mapping[str, Any] | None = None,
                       *, local: bool = False) -> Gateway:
            data = base_config(sims)
            data["local"] = local  # the built-in local model (lazy: loaded on first use)
            for name in ("oai1", "oai2"):
                data["providers"][name] = {
                    "kind": "openai", "base_url": sims["openai_chat"].base_url,
                    "api_key": {"env": "SIM_KEY"}}
            data["routes"].update(routes)
            if models:
                data["models"] = dict(models)
            return await serve(compile_data(data), stack)

        yield make


def upstream_requests(sim: RunningSimulator) -> list[dict[str, Any]]:
    return [r.body for r in sim.requests if not r.path.startswith("/_sim") and r.body]


async def send(gw: Gateway, client: Client, body: dict[str, Any]
               ) -> tuple[int, Mapping[str, str], bytes]:
    """POST `body`; status, headers and the whole raw body (JSON, or an SSE stream)."""
    headers = {"Content-Type": "application/json"}
    if client == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
    async with gw.http.post(gw.url + ENDPOINT[client], data=orjson.dumps(body),
                            headers=headers) as response:
        return response.status, response.headers, await response.read()


async def pieces(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """A large body as a chunked upload (aiohttp warns about one big bytes payload)."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def text_of(client: Client, stream: bool, raw: bytes) -> str:
    """The answer's text from a JSON body or from the SSE events' deltas."""
    if not stream:
        body = orjson.loads(raw)
        if client == "openai":
            return str(body["choices"][0]["message"]["content"])
        return "".join(b["text"] for b in body["content"] if b["type"] == "text")
    text = []
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = orjson.loads(line[6:])
        if client == "openai":
            text += [c["delta"].get("content") or "" for c in event["choices"]]
        elif event["type"] == "content_block_delta":
            text.append(event["delta"].get("text", ""))
    return "".join(text)


# --- item: a prompt too large for every target --------------------------------------------

@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", CLIENTS)
async def test_prompt_larger_than_every_window_is_400_context_length_exceeded(
    build: Build, sims: dict[str, RunningSimulator], client: Client, stream: bool
) -> None:
    """5 MiB of text (under the 10 MiB body limit) for gpt-4.1's catalog window of
    1,047,576 tokens: the caller's error, in the caller's dialect, with no upstream call."""
    gw = await build({"big": {"targets": [{"provider": "oai1", "model": "gpt-4.1"}]}})
    prompt = "0123456789abcdef" * (5 * MiB // 16)
    body = orjson.dumps(valid_body(client, model="big", stream=stream, messages=[
        {"role": "user", "content": prompt}]))
    reply = await post(gw, client, pieces(body))
    error = error_of(client, reply, 400)
    if client == "openai":
        assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert error["type"] == "invalid_request_error"
    assert "about 1,310,722 tokens" in error["message"]
    assert "the largest is 1,047,576 tokens" in error["message"]
    assert upstream_requests(sims["openai_chat"]) == []


# --- item: an upstream's context overflow with catalog windows ----------------------------

TWINS = {"twins": {"targets": [{"provider": "oai1", "model": "gpt-4.1"},
                               {"provider": "oai2", "model": "gpt-4.1", "priority": 1}]}}


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", CLIENTS)
async def test_context_overflow_fails_over_to_a_twin_with_the_same_catalog_window(
    build: Build, sims: dict[str, RunningSimulator], client: Client, stream: bool
) -> None:
    gw = await build(TWINS)
    sims["openai_chat"].faults.add(Fault(**OVERFLOW))  # the first request: oai1's
    status, headers, raw = await send(gw, client, valid_body(client, model="twins",
                                                             stream=stream))
    assert status == 200, raw
    assert headers["x-turnout-deployment"] == "oai2/gpt-4.1"
    assert headers["x-turnout-attempts"] == "2"
    assert text_of(client, stream, raw).endswith("You said: hello there")


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", CLIENTS)
async def test_context_overflow_on_every_target_is_the_callers_400(
    build: Build, sims: dict[str, RunningSimulator], client: Client, stream: bool
) -> None:
    gw = await build(TWINS)
    sims["openai_chat"].faults.add(Fault(**OVERFLOW, times=2))
    reply = await post(gw, client, valid_body(client, model="twins", stream=stream))
    error = error_of(client, reply, 400)
    if client == "openai":
        assert error["code"] == "context_length_exceeded"
    assert len(upstream_requests(sims["openai_chat"])) == 2


# --- item: what the default local model cannot do ----------------------------------------

@pytest.fixture
async def default_gateway() -> AsyncIterator[Gateway]:
    """The default configuration: routes `local`, `smollm2`, `default` on SmolLM2, whose
    catalog row says `tools: false, vision: false, reasoning: false`."""
    async with AsyncExitStack() as stack:
        yield await serve(compile_data({}), stack)


TOOLS: dict[Client, dict[str, Any]] = {
    "openai": {"tools": [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "required"},
    "anthropic": {"tools": [{"name": "get_weather", "input_schema": {
        "type": "object", "properties": {}}}], "tool_choice": {"type": "any"}},
}
PNG = "iVBORw0KGgo="
IMAGE: dict[Client, dict[str, Any]] = {
    "openai": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]},
    "anthropic": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG}}]}]},
}
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(("client", "changes", "named"), [
    pytest.param("openai", TOOLS["openai"], "tools", id="openai-tools"),
    pytest.param("anthropic", TOOLS["anthropic"], "tools", id="anthropic-tools"),
    pytest.param("openai", IMAGE["openai"], "image input", id="openai-image"),
    pytest.param("anthropic", IMAGE["anthropic"], "image input", id="anthropic-image"),
    pytest.param("anthropic", THINKING, "thinking", id="anthropic-thinking"),
])
async def test_default_local_model_refuses_what_it_cannot_do(
    default_gateway: Gateway, client: Client, changes: dict[str, Any], named: str,
    stream: bool,
) -> None:
    """400 unsupported_feature naming the capability and the route, before the model is
    even loaded (it starts lazily, and is still stopped afterwards)."""
    gw = default_gateway
    reply = await post(gw, client, valid_body(client, model="local", stream=stream,
                                              **changes))
    error = error_of(client, reply, 400)
    if client == "openai":
        assert error["code"] == "unsupported_feature"
    assert f"Route 'local' has no target that supports {named}" in error["message"]
    assert "local/smollm2" in error["message"]
    async with gw.http.get(gw.url + "/readyz") as response:
        assert (await response.json())["components"] == {"local:local": "stopped"}


@pytest.mark.parametrize("stream", STREAM)
async def test_a_target_lacking_tools_is_skipped_for_one_that_has_them(
    build: Build, sims: dict[str, RunningSimulator], stream: bool
) -> None:
    """The default local model first, gpt-4o-mini second: a tool request goes straight to
    the second, and gets its tool call."""
    gw = await build({"mixed": {"targets": [
        {"provider": "local", "model": "smollm2"},
        {"provider": "oai1", "model": "gpt-4o-mini", "priority": 1}]}}, local=True)
    status, headers, raw = await send(gw, "openai", valid_body(
        "openai", model="mixed", stream=stream, **TOOLS["openai"]))
    assert status == 200, raw
    assert headers["x-turnout-deployment"] == "oai1/gpt-4o-mini"
    assert headers["x-turnout-attempts"] == "1"
    assert b"get_weather" in raw
    assert gw.engine.readiness() == {"local:local": "stopped"}


# --- item: max_tokens above the model's output limit --------------------------------------

@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", CLIENTS)
async def test_max_tokens_above_the_output_limit_is_capped_and_said(
    build: Build, sims: dict[str, RunningSimulator], client: Client, stream: bool
) -> None:
    """gpt-4o-mini writes at most 16,384 tokens (catalog): that is what it is sent."""
    gw = await build({"mini": {"targets": [{"provider": "oai1", "model": "gpt-4o-mini"}]}})
    status, headers, raw = await send(gw, client, valid_body(
        client, model="mini", stream=stream, max_tokens=1_000_000_000))
    assert status == 200, raw
    assert headers["x-turnout-max-tokens-capped"] == "16384"
    assert upstream_requests(sims["openai_chat"])[-1]["max_tokens"] == 16384
    assert text_of(client, stream, raw).endswith("You said: hello there")

    status, headers, raw = await send(gw, client, valid_body(
        client, model="mini", stream=stream, max_tokens=100))
    assert status == 200, raw
    assert "x-turnout-max-tokens-capped" not in headers
    assert upstream_requests(sims["openai_chat"])[-1]["max_tokens"] == 100
