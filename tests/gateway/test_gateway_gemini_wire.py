"""What the gateway sends to a Gemini upstream, validated by the official google-genai
types (strict pydantic models, unknown fields rejected), for requests from both SDKs."""

from __future__ import annotations

import json
from typing import Any

from _gw_clients import (
    WEATHER,
    Call,
    Result,
    Say,
    anthropic_messages,
    openai_messages,
    openai_tools,
)
from _gw_harness import MODEL, ROUTE, Gateway
from google.genai import types

from turnout.sim.server import RunningSimulator

# Fields of the REST `GenerateContentRequest` body (the model is in the URL).
_REQUEST_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                   "safetySettings", "cachedContent", "labels"}

TURNS = [
    Say("system", "Answer briefly."),
    Say("user", "What is the weather in Porto?"),
    Call("call_1", "get_weather", {"city": "Porto", "unit": "celsius"}),
    Result("call_1", "Cloudy, 17 degrees"),
    Say("assistant", "It is cloudy and 17 degrees."),
    Say("user", "And tomorrow?"),
]


def validated(sim: RunningSimulator) -> dict[str, Any]:
    """The last request body the Gemini simulator got, after google-genai's types accept
    every part of it."""
    recorded = sim.requests[-1]
    body = recorded.body
    assert isinstance(body, dict)
    assert set(body) <= _REQUEST_FIELDS, set(body) - _REQUEST_FIELDS
    for content in body["contents"]:
        types.Content.model_validate(content)
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    return body


def check_conversation(body: dict[str, Any]) -> None:
    contents = [types.Content.model_validate(c) for c in body["contents"]]
    system = types.Content.model_validate(body["systemInstruction"])
    assert [p.text for p in system.parts or []] == ["Answer briefly."]
    assert [c.role for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[0].parts and contents[0].parts[0].text == "What is the weather in Porto?"
    call = contents[1].parts[0].function_call if contents[1].parts else None
    assert call is not None
    assert call.name == "get_weather" and call.args == {"city": "Porto", "unit": "celsius"}
    response = contents[2].parts[0].function_response if contents[2].parts else None
    assert response is not None
    assert response.name == "get_weather"
    assert response.response == {"result": "Cloudy, 17 degrees"}
    assert contents[4].parts and contents[4].parts[0].text == "And tomorrow?"
    tool = types.Tool.model_validate(body["tools"][0])
    declaration = (tool.function_declarations or [])[0]
    assert declaration.name == "get_weather"
    assert declaration.parameters_json_schema == WEATHER.schema


async def test_openai_client_request_is_valid_gemini(
        gateway: Gateway, sims: dict[str, RunningSimulator]) -> None:
    completion = await gateway.openai.chat.completions.create(
        model=ROUTE["gemini"], messages=openai_messages(TURNS),
        tools=openai_tools([WEATHER]),
        tool_choice="none", temperature=0.25, top_p=0.5, max_tokens=40, stop=["zzz"], seed=7)
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content == (
        f"Hello from gemini-sim ({MODEL['gemini']}). You said: And tomorrow?")
    body = validated(sims["gemini"])
    check_conversation(body)
    config = types.GenerationConfig.model_validate(body["generationConfig"])
    assert (config.temperature, config.top_p, config.max_output_tokens) == (0.25, 0.5, 40)
    assert config.stop_sequences == ["zzz"] and config.seed == 7
    tool_config = types.ToolConfig.model_validate(body["toolConfig"])
    assert tool_config.function_calling_config is not None
    assert tool_config.function_calling_config.mode == types.FunctionCallingConfigMode.NONE


async def test_anthropic_client_request_is_valid_gemini(
        gateway: Gateway, sims: dict[str, RunningSimulator]) -> None:
    system, messages = anthropic_messages(TURNS)
    assert system is not None
    async with gateway.anthropic.messages.stream(
            model=ROUTE["gemini"], system=system, messages=messages,
            max_tokens=40, stop_sequences=["zzz"],
            # This SDK version no longer types sampling knobs; the Messages API takes them.
            extra_body={"temperature": 0.25, "top_k": 5},
            tools=[{"name": WEATHER.name, "description": WEATHER.description,
                    "input_schema": WEATHER.schema}],
            tool_choice={"type": "tool", "name": "get_weather"}) as stream:
        message = await stream.get_final_message()
    # A forced tool: the simulator calls it even after earlier turns.
    assert [b.type for b in message.content] == ["tool_use"]
    body = validated(sims["gemini"])
    assert sims["gemini"].requests[-1].query == {"alt": "sse"}
    check_conversation(body)
    config = types.GenerationConfig.model_validate(body["generationConfig"])
    assert (config.temperature, config.top_k, config.max_output_tokens) == (0.25, 5, 40)
    assert config.stop_sequences == ["zzz"]
    tool_config = types.ToolConfig.model_validate(body["toolConfig"])
    calling = tool_config.function_calling_config
    assert calling is not None
    assert calling.mode == types.FunctionCallingConfigMode.ANY
    assert calling.allowed_function_names == ["get_weather"]


async def test_structured_output_is_valid_gemini(
        gateway: Gateway, sims: dict[str, RunningSimulator]) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "days": {"type": "integer"}},
              "required": ["city", "days"], "additionalProperties": False}
    completion = await gateway.openai.chat.completions.create(
        model=ROUTE["gemini"], messages=[{"role": "user", "content": "Plan a trip"}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "trip", "schema": schema, "strict": True}})
    # The simulator answers a document built from the schema it was given.
    assert json.loads(completion.choices[0].message.content or "") == {
        "city": "sample", "days": 1}
    body = validated(sims["gemini"])
    config = types.GenerationConfig.model_validate(body["generationConfig"])
    assert config.response_mime_type == "application/json"
    assert config.response_json_schema == schema
