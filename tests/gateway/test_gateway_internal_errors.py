"""A bug behind the gateway (an unexpected exception, not a `TurnoutError`) still reaches
the client as its dialect's server error, never as an HTML page or a half-open stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack

import anthropic
import openai
import pytest
from _gw_errors import CLIENTS, Client, error_of, post, valid_body
from _gw_harness import Gateway, base_config, compile_data, serve

from turnout.core.events import StreamEvent, TextDelta
from turnout.core.request import ChatRequest
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.engine.outcome import ChatOutcome, StreamOutcome
from turnout.sim.server import RunningSimulator

SECRET_DETAIL = "internal detail that must not leak"


class BrokenEngine(Engine):
    """Fails on model `an`: at once when not streaming, after the first text when streaming."""

    async def chat(self, request: ChatRequest, ctx: CallContext | None = None) -> ChatOutcome:
        if request.model == "an":
            raise RuntimeError(SECRET_DETAIL)
        return await super().chat(request, ctx)

    async def stream(self, request: ChatRequest,
                     ctx: CallContext | None = None) -> StreamOutcome:
        outcome = await super().stream(request, ctx)
        if request.model != "an":
            return outcome

        async def broken() -> AsyncGenerator[list[StreamEvent], None]:
            try:
                async for batch in outcome.batches:
                    for event in batch:
                        yield [event]
                        if isinstance(event, TextDelta):
                            raise RuntimeError(SECRET_DETAIL)
            finally:
                await outcome.batches.aclose()

        return StreamOutcome(outcome.deployment, broken())


@pytest.fixture
async def broken(sims: dict[str, RunningSimulator]) -> AsyncIterator[Gateway]:
    runtime = compile_data(base_config(sims))
    async with AsyncExitStack() as stack:
        yield await serve(runtime, stack, engine=BrokenEngine(runtime))


@pytest.mark.parametrize("client", CLIENTS)
async def test_unexpected_error_is_a_json_500(broken: Gateway, client: Client,
                                              caplog: pytest.LogCaptureFixture) -> None:
    error = error_of(client, await post(broken, client, valid_body(client, "an")), 500)
    assert error["type"] == ("server_error" if client == "openai" else "api_error")
    assert SECRET_DETAIL not in error["message"]
    # The operator sees the traceback in the log.
    assert any(r.exc_info and SECRET_DETAIL in str(r.exc_info[1]) for r in caplog.records)
    # Other routes are unaffected.
    assert (await post(broken, client, valid_body(client, "oa"))).status == 200


async def test_unexpected_error_mid_stream_ends_with_an_error_event(broken: Gateway) -> None:
    texts: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        chunks = await broken.openai.chat.completions.create(
            model="an", messages=[{"role": "user", "content": "hi"}], stream=True)
        async for chunk in chunks:
            texts += [c.delta.content or "" for c in chunk.choices]
    assert "".join(texts) == "Hello "
    assert SECRET_DETAIL not in failed.value.message
    with pytest.raises(anthropic.APIStatusError) as event:
        async with broken.anthropic.messages.stream(
                model="an", max_tokens=16,
                messages=[{"role": "user", "content": "hi"}]) as stream:
            async for _ in stream:
                pass
    assert event.value.body["error"]["type"] == "api_error"
