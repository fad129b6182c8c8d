"""The real OpenAI SDK as the client of the dialect (in-memory transport, no sockets).

The SDK builds the requests our decoder reads, and parses, with strict response
validation, everything our encoders write, including its own stream accumulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import openai
import orjson
import pytest

from turnout.core.errors import RateLimited, TurnoutError
from turnout.core.events import response_to_events
from turnout.core.parts import ImagePart, TextPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse, Usage
from turnout.dialects.openai_chat import DIALECT

Responder = Callable[[ChatRequest], ChatResponse | TurnoutError]
PNG = "data:image/png;base64,iVBORw0KGgo="
TOOLS: list[Any] = [{"type": "function", "function": {
    "name": "weather", "description": "Weather now",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


class FakeGateway:
    """Decodes what the SDK sends and answers through the dialect's encoders."""

    def __init__(self, respond: Responder, fail_mid_stream: TurnoutError | None = None) -> None:
        self.respond = respond
        self.fail_mid_stream = fail_mid_stream
        self.requests: list[ChatRequest] = []

    def handle(self, http: httpx2.Request) -> httpx2.Response:
        request = DIALECT.decode_request(orjson.loads(http.content))
        self.requests.append(request)
        answer = self.respond(request)
        if isinstance(answer, TurnoutError):
            status, headers, body = DIALECT.encode_error(answer)
            return httpx2.Response(status, headers=headers, content=orjson.dumps(body))
        if not request.stream:
            return httpx2.Response(200, content=orjson.dumps(DIALECT.encode_response(answer)),
                                   headers={"content-type": "application/json"})
        return httpx2.Response(200, content=self._stream(request, answer),
                               headers={"content-type": "text/event-stream"})

    async def _stream(self, request: ChatRequest, answer: ChatResponse) -> AsyncIterator[bytes]:
        encoder = DIALECT.stream_encoder(request)
        for event in response_to_events(answer):
            yield encoder.encode(event)
            if self.fail_mid_stream is not None:
                yield encoder.encode_error(self.fail_mid_stream)
                return
        yield encoder.done()


def sdk(gateway: FakeGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-test", base_url="http://gateway.test/v1", max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(gateway.handle)),
        _strict_response_validation=True,
    )


def weather_answer(request: ChatRequest) -> ChatResponse:
    return ChatResponse(
        id="chatcmpl-42", model=request.model, created=1_700_000_000,
        parts=[TextPart("Looking it up."), ToolCallPart("call_1", "weather", '{"city":"Oslo"}'),
               ToolCallPart("call_2", "weather", '{"city":"Rome"}')],
        finish_reason="tool_calls", usage=Usage(40, 12, cached_tokens=8),
    )


CONVERSATION: list[Any] = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Weather where this photo is?"},
                                 {"type": "image_url", "image_url": {"url": PNG}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function",
         "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_0", "content": "Rain"},
]


async def test_sdk_non_stream_call() -> None:
    gateway = FakeGateway(weather_answer)
    async with sdk(gateway) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=CONVERSATION, tools=TOOLS, tool_choice="auto",
            temperature=0.3, max_completion_tokens=64, stop=["\n\n"], seed=1)
    request = gateway.requests[0]
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "tool"]
    assert request.messages[1].parts[1] == ImagePart(PNG)
    assert request.messages[3].parts == [ToolResultPart("call_0", [TextPart("Rain")],
                                                        name="weather")]
    assert (request.temperature, request.max_tokens, request.stop, request.seed) == \
        (0.3, 64, ["\n\n"], 1)
    message = completion.choices[0].message
    assert message.content == "Looking it up."
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []
            if c.type == "function"] == [("call_1", "weather", '{"city":"Oslo"}'),
                                         ("call_2", "weather", '{"city":"Rome"}')]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 8


async def test_sdk_stream_accumulates_to_the_non_stream_answer() -> None:
    gateway = FakeGateway(weather_answer)
    async with sdk(gateway) as client:
        expected = await client.chat.completions.create(model="gpt-4o", messages=CONVERSATION,
                                                        tools=TOOLS)
        async with client.chat.completions.stream(
            model="gpt-4o", messages=CONVERSATION, tools=TOOLS,
            stream_options={"include_usage": True},
        ) as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_completion()
    assert gateway.requests[1].stream and gateway.requests[1].include_usage
    got = final.model_dump(exclude_none=True)
    # The SDK's stream helper adds `parsed` fields and keeps each tool call's stream
    # `index`; compare what both forms share.
    for choice in got["choices"]:
        choice["message"].pop("parsed", None)
        for call in choice["message"].get("tool_calls", []):
            call["function"].pop("parsed_arguments", None)
            call.pop("index")
    assert got == expected.model_dump(exclude_none=True)


async def test_sdk_sees_openai_errors_with_retry_after() -> None:
    gateway = FakeGateway(lambda _: RateLimited("Too many requests", retry_after=1.5))
    async with sdk(gateway) as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="m", messages=CONVERSATION)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.code == "rate_limit_exceeded" and info.value.type == "rate_limit_error"


async def test_sdk_raises_on_an_error_event_mid_stream() -> None:
    gateway = FakeGateway(weather_answer,
                          fail_mid_stream=RateLimited("upstream gave up", origin="upstream"))
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(model="m", messages=CONVERSATION,
                                                      stream=True)
        with pytest.raises(openai.APIError, match="upstream gave up"):
            async for _ in stream:
                pass


async def test_sdk_request_with_unsupported_parameter_gets_400() -> None:
    gateway = FakeGateway(weather_answer)

    def handle(http: httpx2.Request) -> httpx2.Response:
        try:
            return gateway.handle(http)
        except TurnoutError as exc:
            status, headers, body = DIALECT.encode_error(exc)
            return httpx2.Response(status, headers=headers, content=orjson.dumps(body))

    client = openai.AsyncOpenAI(api_key="k", base_url="http://gateway.test/v1", max_retries=0,
                                http_client=httpx2.AsyncClient(
                                    transport=httpx2.MockTransport(handle)))
    async with client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="m", messages=CONVERSATION, n=3)
    assert info.value.param == "n" and info.value.code == "unsupported_feature"
