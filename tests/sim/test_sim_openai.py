"""The OpenAI simulator, seen through the official OpenAI SDK and a raw HTTP client."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest

from turnout.sim.server import RunningSimulator

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"},
                           "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def client(sim: RunningSimulator) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=0)


async def test_chat_non_stream(openai_sim: RunningSimulator) -> None:
    async with client(openai_sim) as oa:
        completion = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi there"}])
    choice = completion.choices[0]
    assert choice.message.content == "Hello from openai-a (gpt-x). You said: hi there"
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert completion.model == "gpt-x"
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2 + 4, 8)


async def test_chat_stream_one_word_per_chunk(openai_sim: RunningSimulator) -> None:
    async with client(openai_sim) as oa:
        stream = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi there"}], stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(texts) == "Hello from openai-a (gpt-x). You said: hi there"
    assert len(texts) == 8  # one delta per word
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    assert len({c.id for c in chunks}) == 1


async def test_tool_call_and_result(openai_sim: RunningSimulator) -> None:
    async with client(openai_sim) as oa:
        first = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "weather in Oslo?"}],
            tools=[WEATHER_TOOL])
        (call,) = first.choices[0].message.tool_calls or []
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.type == "function" and call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "sample", "unit": "c"}
        assert call.id == "call_openai-a_1"
        second = await oa.chat.completions.create(
            model="gpt-x", tools=[WEATHER_TOOL],
            messages=[
                {"role": "user", "content": "weather in Oslo?"},
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            ])
    assert second.choices[0].message.content == "Tool get_weather returned: sunny"


async def test_tool_call_streamed(openai_sim: RunningSimulator) -> None:
    async with client(openai_sim) as oa:
        stream = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER_TOOL], tool_choice={"type": "function",
                                               "function": {"name": "get_weather"}},
            stream=True)
        deltas = [c.choices[0] async for c in stream if c.choices]
    pieces = [tc.function.arguments for d in deltas for tc in d.delta.tool_calls or []
              if tc.function and tc.function.arguments]
    assert len(pieces) > 1  # arguments arrive in pieces, as OpenAI streams them
    assert json.loads("".join(pieces)) == {"city": "sample", "unit": "c"}
    assert deltas[-1].finish_reason == "tool_calls"


async def test_json_schema_response_format(openai_sim: RunningSimulator) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "days"],
              "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}
    async with client(openai_sim) as oa:
        completion = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "plan"}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "plan", "schema": schema, "strict": True}})
    assert json.loads(completion.choices[0].message.content or "") == {"city": "sample",
                                                                       "days": 1}


async def test_max_tokens_truncates(openai_sim: RunningSimulator) -> None:
    async with client(openai_sim) as oa:
        completion = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert completion.choices[0].message.content == "Hello from"
    assert completion.choices[0].finish_reason == "length"


async def test_models_list(openai_sim: RunningSimulator) -> None:
    async with client(openai_sim) as oa:
        page = await oa.models.list()
    assert [m.id for m in page.data] == ["gpt-4o-mini", "gpt-4o"]


async def test_missing_bearer_is_401_in_openai_shape(
        openai_sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    url = openai_sim.base_url + "/chat/completions"
    async with http.post(url, json={"model": "m", "messages": []}) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert isinstance(body["error"]["message"], str)


async def test_bad_json_is_400_in_openai_shape(
        openai_sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    url = openai_sim.base_url + "/chat/completions"
    headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    async with http.post(url, data=b"{not json", headers=headers) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["type"] == "invalid_request_error"


async def test_invalid_request_is_rejected_by_the_dialect(openai_sim: RunningSimulator) -> None:
    async with client(openai_sim) as oa:
        with pytest.raises(openai.BadRequestError):
            await oa.chat.completions.create(model="gpt-x", messages="not a list")  # type: ignore[arg-type]
