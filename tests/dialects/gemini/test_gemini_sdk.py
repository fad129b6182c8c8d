"""The real `google-genai` SDK against our Gemini inbound side on a loopback aiohttp server.

The SDK builds the request bodies our decoder reads and parses everything our encoders
write. Our own outbound side is also sent through HTTP to the same server, so both
directions meet the wire."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
import pytest
from aiohttp import web
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from turnout.core.errors import RateLimited, TurnoutError
from turnout.core.events import StreamAccumulator, response_to_events
from turnout.core.parts import TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest, Message, ThinkingConfig
from turnout.core.response import ChatResponse, Usage
from turnout.dialects.base import SSEEvent, UpstreamTarget
from turnout.dialects.gemini import DIALECT

# The SDK's own aiohttp session subclass trips an aiohttp deprecation warning; it is theirs.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

Responder = Callable[[ChatRequest], ChatResponse | TurnoutError]
SIGNATURE = b"\x12\x34opaque-thought-state"
SIG_TEXT = base64.b64encode(SIGNATURE).decode()


class FakeGemini:
    """Our inbound side as a Gemini server: decode, answer with `responder`, encode."""

    def __init__(self) -> None:
        self.responder: Responder = lambda request: ChatResponse("r", request.model,
                                                                 [TextPart("ok")], "stop")
        self.requests: list[ChatRequest] = []
        self.paths: list[str] = []

    async def handle(self, http: web.Request) -> web.StreamResponse:
        path = http.match_info["tail"]
        self.paths.append(str(http.rel_url))
        model_path, _, method = path.rpartition(":")
        model = model_path.split("/models/", 1)[1]
        stream = method == "streamGenerateContent"
        try:
            request = DIALECT.decode_request(orjson.loads(await http.read()), model=model,
                                             stream=stream)
            self.requests.append(request)
            result = self.responder(request)
            if isinstance(result, TurnoutError):
                raise result
        except TurnoutError as error:
            status, headers, payload = DIALECT.encode_error(error)
            return web.Response(status=status, headers=headers, body=orjson.dumps(payload),
                                content_type="application/json")
        if not stream:
            return web.Response(body=orjson.dumps(DIALECT.encode_response(result)),
                                content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(http)
        encoder = DIALECT.stream_encoder(request)
        for event in response_to_events(result):
            await response.write(encoder.encode(event))
        await response.write(encoder.done())
        await response.write_eof()
        return response


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeGemini, str]]:
    fake = FakeGemini()
    app = web.Application()
    app.router.add_post("/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def client(server: tuple[FakeGemini, str]) -> AsyncIterator[genai.Client]:
    sdk = genai.Client(api_key="test-key", http_options=types.HttpOptions(
        base_url=server[1], api_version="v1beta"))
    try:
        yield sdk
    finally:
        await sdk.aio.aclose()


ANSWER = ChatResponse(
    "resp-1", "gemini-2.5-flash",
    [ThinkingPart("Consider the weather.", SIG_TEXT), TextPart("Checking."),
     ToolCallPart("call_7", "weather", '{"city": "Paris"}')],
    "tool_calls", usage=Usage(20, 15, cached_tokens=5, reasoning_tokens=6))


async def test_sdk_request_and_response(server: tuple[FakeGemini, str],
                                        client: genai.Client) -> None:
    fake, _ = server
    fake.responder = lambda request: ANSWER
    config = types.GenerateContentConfig(
        system_instruction="Be brief.", temperature=0.4, max_output_tokens=64,
        stop_sequences=["END"], seed=3,
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name="weather", description="Weather now",
            parameters=types.Schema(type=types.Type.OBJECT, properties={
                "city": types.Schema(type=types.Type.STRING)}, required=["city"]))])],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["weather"])),
        thinking_config=types.ThinkingConfig(thinking_budget=128, include_thoughts=True),
        safety_settings=[types.SafetySetting(
            category=types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
            threshold=types.HarmBlockThreshold.BLOCK_NONE)])
    result = await client.aio.models.generate_content(
        model="gemini-2.5-flash", contents="Weather in Paris?", config=config)

    assert fake.paths == ["/v1beta/models/gemini-2.5-flash:generateContent"]
    request = fake.requests[0]
    assert request.model == "gemini-2.5-flash" and request.stream is False
    assert request.system_text() == "Be brief."
    assert request.messages[1] == Message("user", [TextPart("Weather in Paris?")])
    assert request.tools[0].parameters == {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert request.tool_choice is not None and request.tool_choice.name == "weather"
    assert (request.temperature, request.max_tokens, request.stop, request.seed) == (
        0.4, 64, ["END"], 3)
    assert request.thinking == ThinkingConfig(budget_tokens=128)

    parts = result.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts[0].thought is True and parts[0].text == "Consider the weather."
    assert parts[0].thought_signature == SIGNATURE
    assert result.text == "Checking."
    call = result.function_calls[0]  # type: ignore[index]
    assert (call.id, call.name, call.args) == ("call_7", "weather", {"city": "Paris"})
    assert result.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    usage = result.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count,
            usage.thoughts_token_count, usage.cached_content_token_count,
            usage.total_token_count) == (20, 9, 6, 5, 35)
    assert result.response_id == "resp-1" and result.model_version == "gemini-2.5-flash"

    # The SDK sends the model turn back as history: ids and signatures survive.
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
               result.candidates[0].content,  # type: ignore[index]
               types.Content(role="user", parts=[types.Part(function_response=(
                   types.FunctionResponse(id="call_7", name="weather",
                                          response={"result": "sunny"})))])]
    fake.responder = lambda request: ChatResponse("r2", request.model,
                                                  [TextPart("Sunny.")], "stop")
    again = await client.aio.models.generate_content(model="gemini-2.5-flash",
                                                     contents=history)  # type: ignore[arg-type]
    assert again.text == "Sunny."
    replay = fake.requests[1].messages
    assert replay[1] == Message("assistant", [
        ThinkingPart("Consider the weather.", SIG_TEXT), TextPart("Checking."),
        ToolCallPart("call_7", "weather", '{"city":"Paris"}')])
    assert replay[2] == Message("tool", [ToolResultPart("call_7", [TextPart("sunny")],
                                                        name="weather")])


async def test_sdk_stream(server: tuple[FakeGemini, str], client: genai.Client) -> None:
    fake, _ = server
    fake.responder = lambda request: ANSWER
    chunks = [c async for c in await client.aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents="Weather in Paris?")]
    assert fake.paths == ["/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"]
    assert fake.requests[0].stream is True
    text = "".join(p.text or "" for c in chunks for p in c.candidates[0].content.parts  # type: ignore[index, union-attr]
                   if not p.thought)
    assert text == "Checking."
    calls = [f for c in chunks for f in (c.function_calls or [])]
    assert [(f.id, f.args) for f in calls] == [("call_7", {"city": "Paris"})]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert chunks[-1].usage_metadata.total_token_count == 35  # type: ignore[union-attr]


async def test_sdk_sees_our_errors(server: tuple[FakeGemini, str],
                                   client: genai.Client) -> None:
    fake, _ = server
    fake.responder = lambda request: RateLimited("Quota exceeded", retry_after=7)
    with pytest.raises(genai_errors.ClientError) as info:
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    assert info.value.message == "Quota exceeded"
    fake.responder = lambda request: ANSWER
    with pytest.raises(genai_errors.ClientError) as invalid:
        await client.aio.models.generate_content(
            model="gemini-2.5-flash", contents="hi",
            config=types.GenerateContentConfig(candidate_count=2))
    assert invalid.value.code == 400 and invalid.value.status == "INVALID_ARGUMENT"


async def test_our_outbound_side_over_http(server: tuple[FakeGemini, str]) -> None:
    fake, base_url = server
    fake.responder = lambda request: ANSWER
    target = UpstreamTarget(f"{base_url}/v1beta", "gemini-2.5-flash", api_key="k")
    request = ChatRequest("alias", [Message("user", [TextPart("Weather in Paris?")])])
    async with aiohttp.ClientSession() as session:
        http = DIALECT.build_request(request, target)
        async with session.post(http.url, headers=http.headers, data=http.body) as reply:
            direct = DIALECT.decode_response(await reply.read())
        request.stream = True
        http = DIALECT.build_request(request, target)
        async with session.post(http.url, headers=http.headers, data=http.body) as reply:
            raw = await reply.read()
    decoder = DIALECT.stream_decoder()
    accumulator = StreamAccumulator()
    for block in raw.split(b"\r\n\r\n"):
        if block:
            for event in decoder.feed(SSEEvent(block.removeprefix(b"data: "))):
                accumulator.add(event)
    for event in decoder.close():
        accumulator.add(event)
    assert accumulator.result() == direct
    assert direct.parts[2] == ToolCallPart("gemini_call_7", "weather", '{"city":"Paris"}')
    assert direct.text() == "Checking." and direct.usage == ANSWER.usage
    assert [r.messages for r in fake.requests] == [request.messages, request.messages]
