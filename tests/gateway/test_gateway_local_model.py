"""End to end against the real local model (SmolLM2 via xllamacpp), which the default
configuration includes: routes `local`, `smollm2` and `default`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from _gw_harness import Gateway, base_config, compile_data, serve

from turnout.sim.server import RunningSimulator

pytestmark = pytest.mark.local_model

MAX_TOKENS = 8
QUESTION = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture
async def local_gateway() -> AsyncIterator[Gateway]:
    async with AsyncExitStack() as stack:
        yield await serve(compile_data({}), stack)  # the default configuration


async def readiness(gw: Gateway) -> tuple[int, dict[str, Any]]:
    async with gw.http.get(gw.url + "/readyz") as response:
        return response.status, await response.json()


def check_usage(usage: Any) -> None:
    assert usage is not None
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    # The chat template alone is several tokens; the question adds more.
    assert 10 < usage.prompt_tokens < 200
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_local_model_end_to_end(local_gateway: Gateway) -> None:
    gw = local_gateway
    assert {"local", "smollm2", "default"} <= {m.id async for m in gw.openai.models.list()}
    # Lazy start: nothing loaded yet, which is not a failure.
    assert await readiness(gw) == (200, {"status": "ready",
                                         "components": {"local:local": "stopped"}})

    raw = await gw.openai.chat.completions.with_raw_response.create(
        model="smollm2", messages=QUESTION, max_tokens=MAX_TOKENS)
    completion = raw.parse()
    assert raw.headers["x-turnout-provider"] == "local"
    assert raw.headers["x-turnout-model"] == "smollm2"
    choice = completion.choices[0]
    assert (choice.message.content or "").strip()
    assert choice.finish_reason in ("stop", "length")
    check_usage(completion.usage)
    assert await readiness(gw) == (200, {"status": "ready",
                                         "components": {"local:local": "ready"}})

    chunks = await gw.openai.chat.completions.create(
        model="local", messages=QUESTION, max_tokens=MAX_TOKENS,
        stream=True, stream_options={"include_usage": True})
    texts: list[str] = []
    finishes: list[str] = []
    streamed_usage = None
    async for chunk in chunks:
        for delta in chunk.choices:
            texts.append(delta.delta.content or "")
            if delta.finish_reason:
                finishes.append(delta.finish_reason)
        if chunk.usage is not None:
            assert streamed_usage is None and not chunk.choices  # one, at the end
            streamed_usage = chunk.usage
    assert "".join(texts).strip()
    assert len(finishes) == 1 and finishes[0] in ("stop", "length")
    check_usage(streamed_usage)

    message = await gw.anthropic.messages.create(
        model="default", max_tokens=MAX_TOKENS,
        messages=QUESTION)
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert 0 < message.usage.output_tokens <= MAX_TOKENS
    # Anthropic counts prompt tokens served from the cache apart from `input_tokens`, and
    # llama.cpp reuses the cached prompt of the identical earlier requests.
    usage = message.usage
    prompt = usage.input_tokens + (usage.cache_read_input_tokens or 0) \
        + (usage.cache_creation_input_tokens or 0)
    assert 10 < prompt < 200 and usage.input_tokens >= 0


@pytest.fixture
async def small_local(sims: dict[str, RunningSimulator]) -> AsyncIterator[Gateway]:
    """The local model with a 256-token n_ctx, and a route `spill` that falls back from it
    to the OpenAI simulator."""
    data = base_config(sims)
    data["local"] = {"context_window": 256, "parallel": 1}
    data["routes"]["spill"] = {"targets": [
        {"provider": "local", "model": "smollm2"},
        {"provider": "sim-openai", "model": "gpt-4o-mini", "priority": 1}]}
    async with AsyncExitStack() as stack:
        yield await serve(compile_data(data), stack)


async def test_local_overflow_fails_over_and_max_tokens_is_capped_at_n_ctx(
    small_local: Gateway, sims: dict[str, RunningSimulator]
) -> None:
    """600 characters of `x `: about 152 tokens by the gateway's estimate, so the 256-token
    local model is tried, but 331 by its tokenizer. llama.cpp's `exceed_context_size_error`
    is a context overflow: the request moves on to the simulator."""
    gw = small_local
    crowded = [{"role": "user", "content": "x " * 300}]
    raw = await gw.openai.chat.completions.with_raw_response.create(
        model="spill", messages=crowded, max_tokens=MAX_TOKENS)
    assert raw.headers["x-turnout-deployment"] == "sim-openai/gpt-4o-mini"
    assert raw.headers["x-turnout-attempts"] == "2"
    chunks = await gw.openai.chat.completions.create(
        model="spill", messages=crowded, max_tokens=MAX_TOKENS, stream=True)
    assert chunks.response.headers["x-turnout-deployment"] == "sim-openai/gpt-4o-mini"
    async for _chunk in chunks:
        pass

    # No more than n_ctx can ever be written: a billion becomes 256, and the client is told.
    # (The stop sequence only keeps the test short; the cap does not depend on it.)
    raw = await gw.openai.chat.completions.with_raw_response.create(
        model="local", messages=QUESTION, max_tokens=1_000_000_000, stop=[" ", "\n"])
    assert raw.headers["x-turnout-max-tokens-capped"] == "256"
    completion = raw.parse()
    assert completion.usage is not None
    assert completion.usage.prompt_tokens + completion.usage.completion_tokens <= 256
