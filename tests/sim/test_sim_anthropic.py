"""The Anthropic simulator, seen through the official Anthropic SDK and a raw HTTP client."""

from __future__ import annotations

import json

import aiohttp
import anthropic
import pytest

from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

HELLO = "Hello from anthropic-a (claude-x). You said: hi there"
USER = [{"role": "user", "content": "hi there"}]
TOOL = {
    "name": "lookup",
    "description": "Look a word up",
    "input_schema": {"type": "object",
                     "properties": {"word": {"type": "string"}, "limit": {"type": "integer"}},
                     "required": ["word"]},
}


def client(sim: RunningSimulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sim.url, api_key="k", max_retries=0)


async def test_message_non_stream(anthropic_sim: RunningSimulator) -> None:
    async with client(anthropic_sim) as an:
        message = await an.messages.create(model="claude-x", max_tokens=100, messages=USER,
                                           system="Be brief.")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == HELLO
    assert message.id.startswith("msg_")
    assert message.model == "claude-x" and message.role == "assistant"
    assert message.stop_reason == "end_turn"
    # Anthropic's system prompt is a message too: 2 + 2 words, 4 per message
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2 + 2 + 8, 8)


async def test_stream_accumulates_to_the_same_message(anthropic_sim: RunningSimulator) -> None:
    async with client(anthropic_sim) as an, an.messages.stream(
            model="claude-x", max_tokens=100, messages=USER) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == HELLO
    assert len(texts) == 8
    assert final.content[0].type == "text" and final.content[0].text == HELLO
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 8)


async def test_stream_with_thinking(anthropic_sim: RunningSimulator) -> None:
    async with client(anthropic_sim) as an, an.messages.stream(
            model="claude-x", max_tokens=2000, messages=USER,
            thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = await stream.get_final_message()
    thinking, text = final.content
    assert thinking.type == "thinking"
    assert thinking.thinking == "Thinking about: hi there"
    assert thinking.signature == "sig-anthropic-a"
    assert text.type == "text" and text.text == HELLO


async def test_tool_use_and_result(anthropic_sim: RunningSimulator) -> None:
    async with client(anthropic_sim) as an:
        first = await an.messages.create(model="claude-x", max_tokens=100, messages=USER,
                                         tools=[TOOL])  # type: ignore[list-item]
        (block,) = first.content
        assert block.type == "tool_use"
        assert block.name == "lookup" and block.input == {"word": "sample", "limit": 1}
        assert first.stop_reason == "tool_use"
        second = await an.messages.create(
            model="claude-x", max_tokens=100, tools=[TOOL],  # type: ignore[list-item]
            messages=[*USER, {"role": "assistant", "content": [block.model_dump()]},
                      {"role": "user", "content": [{"type": "tool_result",
                                                    "tool_use_id": block.id,
                                                    "content": "a greeting"}]}])
    assert second.content[0].type == "text"
    assert second.content[0].text == "Tool lookup returned: a greeting"


async def test_tool_use_streamed(anthropic_sim: RunningSimulator) -> None:
    async with client(anthropic_sim) as an, an.messages.stream(
            model="claude-x", max_tokens=100, messages=USER,
            tools=[TOOL]) as stream:  # type: ignore[list-item]
        final = await stream.get_final_message()
    (block,) = final.content
    assert block.type == "tool_use" and block.input == {"word": "sample", "limit": 1}
    assert final.stop_reason == "tool_use"


async def test_stop_sequence(anthropic_sim: RunningSimulator) -> None:
    async with client(anthropic_sim) as an:
        message = await an.messages.create(model="claude-x", max_tokens=100, messages=USER,
                                           stop_sequences=["You said"])
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from anthropic-a (claude-x). "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "You said"


@pytest.mark.parametrize(("headers", "status", "error_type"), [
    ({"anthropic-version": "2023-06-01"}, 401, "authentication_error"),
    ({"x-api-key": "k"}, 400, "invalid_request_error"),
])
async def test_required_headers(anthropic_sim: RunningSimulator, http: aiohttp.ClientSession,
                                headers: dict[str, str], status: int, error_type: str) -> None:
    payload = {"model": "claude-x", "max_tokens": 10, "messages": USER}
    async with http.post(anthropic_sim.base_url + "/messages", json=payload,
                         headers=headers) as resp:
        assert resp.status == status
        body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type


async def test_x_api_key_is_accepted(anthropic_sim: RunningSimulator,
                                     http: aiohttp.ClientSession) -> None:
    payload = {"model": "claude-x", "max_tokens": 10, "messages": USER}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with http.post(anthropic_sim.base_url + "/messages", json=payload,
                         headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["content"][0]["text"] == HELLO


async def test_overloaded_529(anthropic_sim: RunningSimulator) -> None:
    anthropic_sim.faults.add(Fault(kind="status", status=529))
    async with client(anthropic_sim) as an:
        with pytest.raises(anthropic.OverloadedError) as caught:
            await an.messages.create(model="claude-x", max_tokens=100, messages=USER)
    assert caught.value.status_code == 529
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


async def test_rate_limit_with_retry_after(anthropic_sim: RunningSimulator) -> None:
    anthropic_sim.faults.add(Fault(kind="status", status=429, headers={"retry-after": "3"}))
    async with client(anthropic_sim) as an:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await an.messages.create(model="claude-x", max_tokens=100, messages=USER)
    assert caught.value.response.headers["retry-after"] == "3"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"


async def test_error_event_in_stream(anthropic_sim: RunningSimulator) -> None:
    anthropic_sim.faults.add(Fault(kind="error_event", after_chunks=2))
    async with client(anthropic_sim) as an:
        texts: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            async with an.messages.stream(model="claude-x", max_tokens=100,
                                          messages=USER) as stream:
                async for text in stream.text_stream:
                    texts.append(text)
    assert texts == ["Hello "]
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


async def test_cut_stream_has_no_message_stop(anthropic_sim: RunningSimulator,
                                              http: aiohttp.ClientSession) -> None:
    anthropic_sim.faults.add(Fault(kind="cut_stream", after_chunks=3))
    payload = {"model": "claude-x", "max_tokens": 100, "messages": USER, "stream": True}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with http.post(anthropic_sim.base_url + "/messages", json=payload,
                         headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = await resp.read()
    events = [line[7:] for line in raw.decode().split("\n") if line.startswith("event: ")]
    assert events[0] == "message_start"
    assert "message_stop" not in events and "message_delta" not in events
    datas = [json.loads(line[6:]) for line in raw.decode().split("\n")
             if line.startswith("data: ")]
    assert datas[0]["message"]["usage"]["input_tokens"] == 6


async def test_cut_stream_through_the_sdk(anthropic_sim: RunningSimulator) -> None:
    anthropic_sim.faults.add(Fault(kind="cut_stream", after_chunks=3))
    async with client(anthropic_sim) as an, an.messages.stream(
            model="claude-x", max_tokens=100, messages=USER) as stream:
        types = [event.type async for event in stream]
    assert "message_stop" not in types
    assert types[0] == "message_start"


async def test_reset_is_a_connection_error(anthropic_sim: RunningSimulator) -> None:
    anthropic_sim.faults.add(Fault(kind="reset"))
    async with client(anthropic_sim) as an:
        with pytest.raises(anthropic.APIConnectionError):
            await an.messages.create(model="claude-x", max_tokens=100, messages=USER)
