"""A stream is committed to the client only when its first content arrives.

Each upstream dialect opens a stream with events that carry nothing a client could see (an
empty block, a `ping`, a usage-only chunk, a role-only chunk, a bare thought signature). An
upstream that sends only those and then drops must fail over invisibly; one that goes on
must reach the client whole, with the held-back events relayed in order; one that finishes
with no content at all is still a normal, empty answer. The upstream wire sequences are
written exactly (`raw_stream` faults), not left to the simulators' own encoders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
from _gw_harness import (
    MODEL,
    PROVIDER,
    ROUTE,
    SIM_NAME,
    UPSTREAMS,
    Gateway,
    base_config,
    compile_data,
    serve,
)

from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

FALLBACK_OF = {"openai_chat": "anthropic_messages", "anthropic_messages": "openai_chat",
           "gemini": "openai_chat"}
"""Where each upstream fails over to: another simulator, so the answer says who served."""

QUESTION = [{"role": "user", "content": "hi"}]


def failover_route(upstream: str) -> str:
    return f"{ROUTE[upstream]}-then-{ROUTE[FALLBACK_OF[upstream]]}"


@pytest.fixture
async def gateway(sims: dict[str, RunningSimulator]) -> AsyncIterator[Gateway]:
    """The default routes, plus one per upstream that fails over to another simulator."""
    data = base_config(sims)
    for upstream in UPSTREAMS:
        data["routes"][failover_route(upstream)] = {"targets": [
            {"provider": PROVIDER[d], "model": MODEL[d], "priority": i}
            for i, d in enumerate((upstream, FALLBACK_OF[upstream]))]}
    async with AsyncExitStack() as stack:
        yield await serve(compile_data(data), stack)


def hello(upstream: str) -> str:
    return f"Hello from {SIM_NAME[upstream]} ({MODEL[upstream]}). You said: hi"


# --- upstream wire sequences ----------------------------------------------------------------------

def anthropic(event: str, **data: Any) -> str:
    return f"event: {event}\ndata: {orjson.dumps({'type': event, **data}).decode()}\n\n"


def data_line(payload: Any, sep: str = "\n\n") -> str:
    return f"data: {orjson.dumps(payload).decode()}{sep}"


def openai_chunk(delta: dict[str, Any] | None, finish: str | None = None,
                 **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return data_line({"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1,
                      "model": "raw", "choices": choices, **extra})


def gemini_chunk(parts: list[dict[str, Any]] | None, finish: str | None = None,
                 usage: dict[str, int] | None = None) -> str:
    candidate: dict[str, Any] = {"index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish is not None:
        candidate["finishReason"] = finish
    payload: dict[str, Any] = {"candidates": [candidate], "responseId": "raw",
                               "modelVersion": "raw"}
    if usage is not None:
        payload["usageMetadata"] = usage
    return data_line(payload, "\r\n\r\n")


ANTHROPIC_START = anthropic("message_start", message={
    "id": "msg_raw", "type": "message", "role": "assistant", "model": "raw", "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 11, "output_tokens": 1}})
ROLE_CHUNK = openai_chunk({"role": "assistant", "content": ""})
GEMINI_USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 0, "totalTokenCount": 11}

PRELUDES: dict[str, dict[str, list[str]]] = {
    "anthropic_messages": {
        "empty-text-block": [ANTHROPIC_START, anthropic("ping"), anthropic(
            "content_block_start", index=0, content_block={"type": "text", "text": ""})],
        "empty-text-delta": [ANTHROPIC_START, anthropic(
            "content_block_start", index=0, content_block={"type": "text", "text": ""}),
            anthropic("content_block_delta", index=0,
                      delta={"type": "text_delta", "text": ""})],
        "empty-thinking-block": [ANTHROPIC_START, anthropic(
            "content_block_start", index=0,
            content_block={"type": "thinking", "thinking": "", "signature": ""}),
            anthropic("content_block_delta", index=0,
                      delta={"type": "thinking_delta", "thinking": ""})],
        "usage-only-delta": [ANTHROPIC_START, anthropic("ping"), anthropic(
            "message_delta", delta={"stop_reason": None}, usage={"output_tokens": 1})],
    },
    "openai_chat": {
        "role-only-chunk": [ROLE_CHUNK],
        "usage-only-chunk": [ROLE_CHUNK, openai_chunk(None, usage={
            "prompt_tokens": 11, "completion_tokens": 0, "total_tokens": 11})],
        "empty-content-and-reasoning": [ROLE_CHUNK, openai_chunk(
            {"content": "", "reasoning_content": "", "refusal": None})],
    },
    "gemini": {
        "usage-only-chunk": [gemini_chunk(None, usage=GEMINI_USAGE)],
        "empty-text-part": [gemini_chunk([{"text": ""}], usage=GEMINI_USAGE)],
        "bare-thought-signature": [gemini_chunk([{"text": "", "thoughtSignature": "c2ln"}])],
    },
}
"""Per upstream dialect: openings that carry no content, then the connection drops."""

PRELUDE_CASES = [pytest.param(upstream, name, id=f"{upstream}-{name}")
                 for upstream, cases in PRELUDES.items() for name in cases]


def complete_after(upstream: str) -> list[str]:
    """A prelude's continuation into a whole answer, `Hello` in two deltas."""
    if upstream == "anthropic_messages":
        return [anthropic("content_block_start", index=0,
                          content_block={"type": "text", "text": ""}),
                anthropic("content_block_delta", index=0,
                          delta={"type": "text_delta", "text": "Hel"}),
                anthropic("content_block_delta", index=0,
                          delta={"type": "text_delta", "text": "lo"}),
                anthropic("content_block_stop", index=0),
                anthropic("message_delta", delta={"stop_reason": "end_turn"},
                          usage={"output_tokens": 2}),
                anthropic("message_stop")]
    if upstream == "openai_chat":
        return [openai_chunk({"content": "Hel"}), openai_chunk({"content": "lo"}),
                openai_chunk({}, "stop"),
                openai_chunk(None, usage={"prompt_tokens": 11, "completion_tokens": 2,
                                          "total_tokens": 13}),
                "data: [DONE]\n\n"]
    return [gemini_chunk([{"text": "Hel"}]), gemini_chunk([{"text": "lo"}]),
            gemini_chunk([{"text": ""}], "STOP", usage={
                "promptTokenCount": 11, "candidatesTokenCount": 2, "totalTokenCount": 13})]


EMPTY_ANSWERS: dict[str, list[str]] = {
    "anthropic_messages": [
        ANTHROPIC_START, anthropic("ping"),
        anthropic("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        anthropic("content_block_stop", index=0),
        anthropic("message_delta", delta={"stop_reason": "end_turn"},
                  usage={"output_tokens": 0}),
        anthropic("message_stop")],
    "openai_chat": [ROLE_CHUNK, openai_chunk({}, "stop"), openai_chunk(None, usage={
        "prompt_tokens": 11, "completion_tokens": 0, "total_tokens": 11}), "data: [DONE]\n\n"],
    "gemini": [gemini_chunk([{"text": ""}], "STOP", usage=GEMINI_USAGE)],
}
"""Per upstream dialect: a whole, clean stream whose answer is empty."""


async def openai_stream(gw: Gateway, route: str) -> tuple[str, str | None, int, str]:
    """(text, finish reason, prompt tokens, serving deployment) of a streamed answer read
    through the OpenAI SDK."""
    raw = await gw.openai.chat.completions.with_raw_response.create(
        model=route, messages=QUESTION, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True})
    text, finish, prompt = "", None, 0
    async for chunk in raw.parse():
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        if chunk.usage is not None:
            prompt = chunk.usage.prompt_tokens
    return text, finish, prompt, raw.headers["x-turnout-deployment"]


def deployment(upstream: str) -> str:
    return f"{PROVIDER[upstream]}/{MODEL[upstream]}"


# --- the tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("upstream", "prelude"), PRELUDE_CASES)
async def test_stream_dropped_before_content_fails_over_invisibly(
        gateway: Gateway, sims: dict[str, RunningSimulator], upstream: str,
        prelude: str) -> None:
    sims[upstream].faults.add(Fault(kind="raw_stream", chunks=PRELUDES[upstream][prelude]))
    text, finish, _, served = await openai_stream(gateway, failover_route(upstream))
    fallback = FALLBACK_OF[upstream]
    assert (text, finish, served) == (hello(fallback), "stop", deployment(fallback))
    assert len(sims[upstream].faults) == 0  # the primary was tried, and dropped


@pytest.mark.parametrize(("upstream", "prelude"), PRELUDE_CASES)
async def test_stream_dropped_before_content_fails_over_for_anthropic_clients(
        gateway: Gateway, sims: dict[str, RunningSimulator], upstream: str,
        prelude: str) -> None:
    sims[upstream].faults.add(Fault(kind="raw_stream", chunks=PRELUDES[upstream][prelude]))
    async with gateway.anthropic.messages.stream(
            model=failover_route(upstream), max_tokens=64, messages=QUESTION) as stream:
        message = await stream.get_final_message()
    assert [block.type for block in message.content] == ["text"]
    assert "".join(b.text for b in message.content if b.type == "text") == hello(
        FALLBACK_OF[upstream])
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize(("upstream", "prelude"), PRELUDE_CASES)
async def test_held_back_events_reach_the_client_in_order(
        gateway: Gateway, sims: dict[str, RunningSimulator], upstream: str,
        prelude: str) -> None:
    """The same openings followed by content: nothing held back is lost (the usage of the
    opening included) and the answer comes from the primary."""
    chunks = PRELUDES[upstream][prelude] + complete_after(upstream)
    sims[upstream].faults.add(Fault(kind="raw_stream", chunks=chunks))
    text, finish, prompt, served = await openai_stream(gateway, failover_route(upstream))
    assert (text, finish, prompt, served) == ("Hello", "stop", 11, deployment(upstream))


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_stream_with_no_content_at_all_is_an_empty_answer(
        gateway: Gateway, sims: dict[str, RunningSimulator], upstream: str) -> None:
    sims[upstream].faults.add(Fault(kind="raw_stream", chunks=EMPTY_ANSWERS[upstream]))
    text, finish, prompt, served = await openai_stream(gateway, failover_route(upstream))
    assert (text, finish, prompt, served) == ("", "stop", 11, deployment(upstream))
    sims[upstream].faults.add(Fault(kind="raw_stream", chunks=EMPTY_ANSWERS[upstream]))
    async with gateway.anthropic.messages.stream(
            model=failover_route(upstream), max_tokens=64, messages=QUESTION) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "end_turn"
    assert "".join(b.text for b in message.content if b.type == "text") == ""
    assert message.usage.input_tokens == 11
