"""The fake model's rules, checked against values derived by hand from the task's spec."""

from __future__ import annotations

import orjson
import pytest

from turnout.core.parts import TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import (
    ChatRequest,
    Message,
    ResponseFormat,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
)
from turnout.sim.responder import example_from_schema, respond, truncate_words

WEATHER = ToolDefinition(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city"],
    },
)
CLOCK = ToolDefinition(name="get_time", parameters={"type": "object", "properties": {}})


def user(text: str) -> Message:
    return Message("user", [TextPart(text)])


def test_text_answer_names_simulator_and_model() -> None:
    request = ChatRequest(model="m-1", messages=[Message("system", [TextPart("Be terse.")]),
                                                 user("first"), user("ping pong")])
    response = respond(request, sim_name="sim-a")
    assert response.text() == "Hello from sim-a (m-1). You said: ping pong"
    assert response.model == "m-1"
    assert response.finish_reason == "stop"
    assert response.tool_calls() == []


def test_usage_counts_words_and_message_overhead() -> None:
    request = ChatRequest(model="m", messages=[Message("system", [TextPart("Be terse.")]),
                                               user("hello   there world")])
    usage = respond(request, sim_name="s").usage
    # input: 2 + 3 words, 4 per message; output: "Hello from s (m). You said: hello there world"
    assert usage.input_tokens == 2 + 3 + 2 * 4
    assert usage.output_tokens == 9
    assert usage.reasoning_tokens == 0
    again = respond(request, sim_name="s")
    assert again.usage == usage and again.text() == respond(request, sim_name="s").text()


def test_tool_call_synthesised_from_schema() -> None:
    request = ChatRequest(model="m", messages=[user("weather?")], tools=[CLOCK, WEATHER],
                          tool_choice=ToolChoice("tool", "get_weather"))
    response = respond(request, sim_name="openai sim/1")
    (call,) = response.tool_calls()
    assert call.name == "get_weather"
    assert call.arguments_object() == {"city": "sample", "unit": "celsius", "days": 1}
    assert call.id == "call_openai_sim_1_1"
    assert response.finish_reason == "tool_calls"
    assert response.text() == ""
    assert response.usage.output_tokens == len(call.arguments.split())


def test_first_tool_when_choice_is_auto_and_no_call_when_none() -> None:
    auto = ChatRequest(model="m", messages=[user("hi")], tools=[CLOCK, WEATHER])
    assert [c.name for c in respond(auto, sim_name="s").tool_calls()] == ["get_time"]
    assert respond(auto, sim_name="s").tool_calls()[0].arguments_object() == {}
    none = ChatRequest(model="m", messages=[user("hi")], tools=[WEATHER],
                       tool_choice=ToolChoice("none"))
    assert respond(none, sim_name="s").text() == "Hello from s (m). You said: hi"


def test_tool_result_is_answered_with_text() -> None:
    request = ChatRequest(
        model="m",
        tools=[WEATHER],
        messages=[
            user("weather?"),
            Message("assistant", [ToolCallPart("call_1", "get_weather", '{"city":"Oslo"}')]),
            Message("tool", [ToolResultPart("call_1", [TextPart("rainy, 7C")])]),
        ],
    )
    response = respond(request, sim_name="s")
    assert response.text() == "Tool get_weather returned: rainy, 7C"
    assert response.finish_reason == "stop"
    assert response.tool_calls() == []


def test_schema_synthesis_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "color": {"enum": ["red", "blue"]},
            "nested": {"type": "object", "properties": {"deep": {"type": ["null", "integer"]}}},
            "ref": {"$ref": "#/$defs/Point"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number"}]},
        },
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    assert example_from_schema(schema) == {
        "name": "sample", "count": 1, "score": 1.5, "ok": True, "tags": ["sample"],
        "color": "red", "nested": {"deep": 1}, "ref": {"x": 1.5}, "maybe": 1.5,
    }


def test_gemini_style_upper_case_types() -> None:
    schema = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}
    assert example_from_schema(schema) == {"n": 1}


def test_json_schema_output() -> None:
    fmt = ResponseFormat("json_schema", name="person", schema={
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    })
    request = ChatRequest(model="m", messages=[user("who?")], response_format=fmt)
    assert orjson.loads(respond(request, sim_name="s").text()) == {"name": "sample", "age": 1}


def test_json_object_output() -> None:
    request = ChatRequest(model="m", messages=[user("x")],
                          response_format=ResponseFormat("json_object"))
    document = orjson.loads(respond(request, sim_name="s").text())
    assert document == {"answer": "Hello from s (m). You said: x"}


def test_stop_sequence_truncates() -> None:
    request = ChatRequest(model="m", messages=[user("a b")], stop=["said", "from"])
    response = respond(request, sim_name="s")
    assert response.text() == "Hello "
    assert response.finish_reason == "stop_sequence"
    assert response.stop_sequence == "from"
    assert response.usage.output_tokens == 1


def test_max_tokens_truncates_in_words() -> None:
    request = ChatRequest(model="m", messages=[user("a b c")], max_tokens=3)
    response = respond(request, sim_name="s")
    assert response.text() == "Hello from s"
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 3


def test_max_tokens_not_reached_keeps_stop() -> None:
    request = ChatRequest(model="m", messages=[user("a")], max_tokens=100)
    assert respond(request, sim_name="s").finish_reason == "stop"


def test_thinking_comes_first_with_signature() -> None:
    request = ChatRequest(model="m", messages=[user("why sky blue")],
                          thinking=ThinkingConfig(budget_tokens=1024))
    response = respond(request, sim_name="s")
    thought = response.parts[0]
    assert isinstance(thought, ThinkingPart)
    assert thought.text == "Thinking about: why sky blue"
    assert thought.signature == "sig-s"
    assert response.text() == "Hello from s (m). You said: why sky blue"
    assert response.usage.reasoning_tokens == 5
    assert response.usage.output_tokens == 5 + 9


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("a  b c", 2, "a  b"), ("a b", 5, "a b"), ("a b", 0, ""), ("  a b", 1, "  a"),
])
def test_truncate_words(text: str, limit: int, expected: str) -> None:
    assert truncate_words(text, limit) == expected
