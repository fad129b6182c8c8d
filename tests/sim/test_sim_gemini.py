"""The Gemini simulator, seen through the official google-genai SDK and a raw HTTP client."""

from __future__ import annotations

import json

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

# google-genai subclasses aiohttp.ClientSession, which aiohttp deprecates: not our warning.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession from ClientSession:DeprecationWarning")

HELLO = "Hello from gemini-a (gemini-x). You said: hi there"
PAYLOAD = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}


def client(sim: RunningSimulator, api_version: str | None = None) -> genai.Client:
    # attempts=1: no retries, and it also turns off the SDK's implicit retry of connection
    # errors (which would hide a reset)
    options = types.HttpOptions(base_url=sim.url, api_version=api_version,
                                retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key="k", http_options=options)


@pytest.mark.parametrize("api_version", [None, "v1beta"])
async def test_generate_content(gemini_sim: RunningSimulator, api_version: str | None) -> None:
    gc = client(gemini_sim, api_version)
    try:
        response = await gc.aio.models.generate_content(model="gemini-x", contents="hi there")
    finally:
        await gc.aio.aclose()
    assert response.text == HELLO
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == "gemini-x"
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count) == (6, 8)
    request = gemini_sim.requests[-1]
    assert request.path.endswith("/models/gemini-x:generateContent")
    assert request.headers["x-goog-api-key"] == "k"


async def test_generate_content_stream(gemini_sim: RunningSimulator) -> None:
    gc = client(gemini_sim)
    try:
        chunks = [c async for c in await gc.aio.models.generate_content_stream(
            model="gemini-x", contents="hi there")]
    finally:
        await gc.aio.aclose()
    texts = [c.text for c in chunks if c.text]
    assert "".join(texts) == HELLO
    assert len(texts) == 8
    last = chunks[-1]
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count == 8
    assert gemini_sim.requests[-1].query == {"alt": "sse"}


async def test_function_call_and_response(gemini_sim: RunningSimulator) -> None:
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="find", parameters_json_schema={
            "type": "object", "properties": {"q": {"type": "string"},
                                             "n": {"type": "integer"}}})])
    config = types.GenerateContentConfig(tools=[tool])
    gc = client(gemini_sim)
    try:
        first = await gc.aio.models.generate_content(model="gemini-x", contents="hi",
                                                     config=config)
        (call,) = first.function_calls or []
        assert call.name == "find" and call.args == {"q": "sample", "n": 1}
        assert first.candidates is not None and first.candidates[0].content is not None
        second = await gc.aio.models.generate_content(
            model="gemini-x", config=config,
            contents=[
                types.Content(role="user", parts=[types.Part(text="hi")]),
                first.candidates[0].content,
                types.Content(role="user", parts=[types.Part.from_function_response(
                    name="find", response={"result": "found it"})]),
            ])
    finally:
        await gc.aio.aclose()
    assert second.text == "Tool find returned: found it"


async def test_stream_without_alt_sse_is_a_json_array(gemini_sim: RunningSimulator,
                                                      http: aiohttp.ClientSession) -> None:
    url = gemini_sim.base_url + "/models/gemini-x:streamGenerateContent?key=k"
    async with http.post(url, json=PAYLOAD) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        elements = json.loads(await resp.read())
    assert isinstance(elements, list) and len(elements) >= 8
    text = "".join(p.get("text", "") for e in elements
                   for c in e.get("candidates", []) for p in c["content"].get("parts", []))
    assert text == HELLO
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_missing_key_is_rejected(gemini_sim: RunningSimulator,
                                       http: aiohttp.ClientSession) -> None:
    url = gemini_sim.base_url + "/models/gemini-x:generateContent"
    async with http.post(url, json=PAYLOAD) as resp:
        assert resp.status == 403
        body = await resp.json()
    assert body["error"]["status"] == "PERMISSION_DENIED"
    async with http.post(url, json=PAYLOAD, params={"key": "k"}) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent?alt=sse"])
async def test_number_out_of_range_is_a_400_naming_the_field(
        gemini_sim: RunningSimulator, http: aiohttp.ClientSession, method: str) -> None:
    """The Gemini inbound dialect (which the simulator serves) in Gemini's own error shape."""
    url = gemini_sim.base_url + f"/models/gemini-x:{method}"
    body = json.dumps(PAYLOAD)[:-1] + ', "generationConfig": {"maxOutputTokens": 1e20}}'
    async with http.post(url, data=body, headers={"x-goog-api-key": "k",
                                                  "Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    violation = error["details"][0]["fieldViolations"][0]
    assert violation["field"] == "generationConfig.maxOutputTokens"
    assert "between 1 and 2147483647" in error["message"]


async def test_unknown_method_is_404(gemini_sim: RunningSimulator,
                                     http: aiohttp.ClientSession) -> None:
    url = gemini_sim.base_url + "/models/gemini-x:countTokens?key=k"
    async with http.post(url, json=PAYLOAD) as resp:
        assert resp.status == 404


async def test_rate_limit_fault(gemini_sim: RunningSimulator) -> None:
    gemini_sim.faults.add(Fault(kind="status", status=429, headers={"Retry-After": "2"}))
    gc = client(gemini_sim)
    try:
        with pytest.raises(errors.ClientError) as caught:
            await gc.aio.models.generate_content(model="gemini-x", contents="hi")
    finally:
        await gc.aio.aclose()
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"


async def test_match_by_url_model(gemini_sim: RunningSimulator) -> None:
    gemini_sim.faults.add(Fault.model_validate(
        {"kind": "status", "status": 500, "match": {"model": "gemini-b"}}))
    gc = client(gemini_sim)
    try:
        ok = await gc.aio.models.generate_content(model="gemini-a", contents="hi")
        with pytest.raises(errors.ServerError):
            await gc.aio.models.generate_content(model="gemini-b", contents="hi")
    finally:
        await gc.aio.aclose()
    assert ok.text == "Hello from gemini-a (gemini-a). You said: hi"


async def test_error_event_in_stream(gemini_sim: RunningSimulator) -> None:
    gemini_sim.faults.add(Fault(kind="error_event", after_chunks=2))
    gc = client(gemini_sim)
    texts: list[str | None] = []
    try:
        with pytest.raises(errors.APIError):
            async for chunk in await gc.aio.models.generate_content_stream(
                    model="gemini-x", contents="hi there"):
                texts.append(chunk.text)
    finally:
        await gc.aio.aclose()
    assert texts == ["Hello ", "from "]


async def test_cut_stream_has_no_finish(gemini_sim: RunningSimulator) -> None:
    gemini_sim.faults.add(Fault(kind="cut_stream", after_chunks=3))
    gc = client(gemini_sim)
    try:
        chunks = [c async for c in await gc.aio.models.generate_content_stream(
            model="gemini-x", contents="hi there")]
    finally:
        await gc.aio.aclose()
    assert [c.text for c in chunks] == ["Hello ", "from ", "gemini-a "]
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks)


async def test_malformed_stream(gemini_sim: RunningSimulator) -> None:
    gemini_sim.faults.add(Fault(kind="malformed", after_chunks=1))
    gc = client(gemini_sim)
    try:
        with pytest.raises(errors.UnknownApiResponseError):
            async for _ in await gc.aio.models.generate_content_stream(
                    model="gemini-x", contents="hi there"):
                pass
    finally:
        await gc.aio.aclose()


async def test_reset_is_a_connection_error(gemini_sim: RunningSimulator) -> None:
    gemini_sim.faults.add(Fault(kind="reset"))
    gc = client(gemini_sim)
    try:
        with pytest.raises(aiohttp.ClientError):
            await gc.aio.models.generate_content(model="gemini-x", contents="hi")
    finally:
        await gc.aio.aclose()
