"""The end-to-end matrix: {OpenAI SDK, Anthropic SDK} in x {OpenAI, Anthropic, Gemini}
simulator upstream x {JSON, SSE} x {plain text, tool round trip, system prompt, multi-turn}.

Answers are checked against the simulators' documented rules (`turnout.sim.responder`):
`Hello from <sim> (<model>). You said: <last user text>`, tool calls synthesised from the
schema, `Tool <name> returned: <text>` after a tool result. Usage is checked twice: by the
documented counting rule (words + 4 per message) and against the answer the simulator
computed for the request it recorded, decoded again from the upstream's own wire format.
"""

from __future__ import annotations

from typing import Any

import pytest
from _gw_clients import (
    WEATHER,
    Answer,
    Call,
    Client,
    Result,
    Say,
    ask,
    sim_answer,
    words,
)
from _gw_harness import MODEL, PROVIDER, ROUTE, SIM_NAME, UPSTREAMS, Gateway

from turnout.sim.responder import TOKENS_PER_MESSAGE
from turnout.sim.server import RunningSimulator

CLIENTS: tuple[Client, ...] = ("openai", "anthropic")
NORMAL_FINISH = {"openai": "stop", "anthropic": "end_turn"}
TOOL_FINISH = {"openai": "tool_calls", "anthropic": "tool_use"}

QUESTION = "What is the weather like in Lisbon today?"
SYSTEM = "You are a terse assistant. Answer in one line."


def hello(upstream: str, last_user_text: str) -> str:
    return f"Hello from {SIM_NAME[upstream]} ({MODEL[upstream]}). You said: {last_user_text}"


def expected_input_tokens(*texts: str) -> int:
    """The simulators' rule: words of every message plus 4 per message."""
    return sum(words(t) + TOKENS_PER_MESSAGE for t in texts)


def check_route_headers(answer: Answer, upstream: str) -> None:
    provider, model = PROVIDER[upstream], MODEL[upstream]
    assert answer.headers["x-turnout-provider"] == provider
    assert answer.headers["x-turnout-model"] == model
    assert answer.headers["x-turnout-deployment"] == f"{provider}/{model}"
    assert answer.headers["x-request-id"].startswith("req_")


def check_usage(answer: Answer, sim: RunningSimulator, index: int = -1) -> None:
    computed = sim_answer(sim, index).usage
    assert answer.input_tokens == computed.input_tokens
    assert answer.output_tokens == computed.output_tokens


def upstream_body(sim: RunningSimulator, index: int = -1) -> dict[str, Any]:
    body = sim.requests[index].body
    assert isinstance(body, dict)
    return body


def check_upstream_call(sim: RunningSimulator, stream: bool) -> None:
    """The request reached the simulator in its own protocol, for the route's model."""
    recorded = sim.requests[-1]
    model = MODEL[sim.dialect]
    if sim.dialect == "gemini":
        method = "streamGenerateContent" if stream else "generateContent"
        assert recorded.path == f"/v1beta/models/{model}:{method}"
        assert recorded.query == ({"alt": "sse"} if stream else {})
        assert recorded.headers["x-goog-api-key"] == "sim-upstream-key"
        return
    body = upstream_body(sim)
    assert body["model"] == model
    assert body.get("stream", False) is stream
    if sim.dialect == "anthropic_messages":
        assert recorded.path == "/v1/messages"
        assert recorded.headers["anthropic-version"]
    else:
        assert recorded.path == "/v1/chat/completions"


def upstream_texts(sim: RunningSimulator) -> list[tuple[str, str]]:
    """(role, text) of every non-system turn the upstream received, in its own spelling."""
    body = upstream_body(sim)
    if sim.dialect == "gemini":
        return [(c["role"], "".join(p.get("text", "") for p in c["parts"]))
                for c in body["contents"]]
    turns = []
    for m in body["messages"]:
        if m["role"] in ("system", "developer"):
            continue
        content = m["content"]
        text = content if isinstance(content, str) else "".join(
            b.get("text", "") for b in content if b.get("type") == "text")
        turns.append((m["role"], text))
    return turns


def upstream_system(sim: RunningSimulator) -> str | None:
    """The system prompt as the upstream's protocol carries it, checked for shape."""
    body = upstream_body(sim)
    if sim.dialect == "openai_chat":
        systems = [m for m in body["messages"] if m["role"] in ("system", "developer")]
        if not systems:
            return None
        assert len(systems) == 1 and body["messages"][0] is systems[0]
        content = systems[0]["content"]
        return content if isinstance(content, str) else "".join(b["text"] for b in content)
    if sim.dialect == "anthropic_messages":
        assert all(m["role"] in ("user", "assistant") for m in body["messages"])
        system = body.get("system")
        if system is None or isinstance(system, str):
            return system
        assert all(b["type"] == "text" for b in system)
        return "".join(b["text"] for b in system)
    assert all(c["role"] in ("user", "model") for c in body["contents"])
    instruction = body.get("systemInstruction")
    if instruction is None:
        return None
    return "".join(p["text"] for p in instruction["parts"])


@pytest.fixture(params=[False, True], ids=["json", "sse"])
def stream(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_plain_text(gateway: Gateway, sims: dict[str, RunningSimulator], client: Client,
                          upstream: str, stream: bool) -> None:
    answer = await ask(gateway, client, ROUTE[upstream], [Say("user", QUESTION)],
                       stream=stream)
    sim = sims[upstream]
    assert answer.text == hello(upstream, QUESTION)
    assert answer.tool_calls == []
    assert answer.finish == NORMAL_FINISH[client]
    assert answer.input_tokens == expected_input_tokens(QUESTION)
    assert answer.output_tokens == words(hello(upstream, QUESTION))
    check_usage(answer, sim)
    check_route_headers(answer, upstream)
    assert len(sim.requests) == 1
    check_upstream_call(sim, stream)
    assert upstream_system(sim) is None
    # Only the addressed simulator was called.
    assert all(not s.requests for d, s in sims.items() if d != upstream)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_system_prompt(gateway: Gateway, sims: dict[str, RunningSimulator],
                             client: Client, upstream: str, stream: bool) -> None:
    turns = [Say("system", SYSTEM), Say("user", QUESTION)]
    answer = await ask(gateway, client, ROUTE[upstream], turns, stream=stream)
    sim = sims[upstream]
    assert answer.text == hello(upstream, QUESTION)
    assert answer.finish == NORMAL_FINISH[client]
    assert upstream_system(sim) == SYSTEM
    assert upstream_texts(sim) == [("user", QUESTION)]
    check_upstream_call(sim, stream)
    # The system prompt counts as one message on every path.
    assert answer.input_tokens == expected_input_tokens(SYSTEM, QUESTION)
    check_usage(answer, sim)
    check_route_headers(answer, upstream)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_multi_turn(gateway: Gateway, sims: dict[str, RunningSimulator], client: Client,
                          upstream: str, stream: bool) -> None:
    first, reply, second = "My name is Ada.", "Nice to meet you, Ada.", "What is my name?"
    turns = [Say("user", first), Say("assistant", reply), Say("user", second)]
    answer = await ask(gateway, client, ROUTE[upstream], turns, stream=stream)
    sim = sims[upstream]
    assert answer.text == hello(upstream, second)
    assert answer.finish == NORMAL_FINISH[client]
    model_role = "model" if upstream == "gemini" else "assistant"
    assert upstream_texts(sim) == [("user", first), (model_role, reply), ("user", second)]
    assert answer.input_tokens == expected_input_tokens(first, reply, second)
    check_usage(answer, sim)
    check_route_headers(answer, upstream)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_tool_round_trip(gateway: Gateway, sims: dict[str, RunningSimulator],
                               client: Client, upstream: str, stream: bool) -> None:
    sim = sims[upstream]
    route = ROUTE[upstream]
    turns: list[Say | Call | Result] = [Say("user", QUESTION)]
    answer = await ask(gateway, client, route, turns, tools=[WEATHER], stream=stream)
    # The simulator fills every property: strings "sample", enums their first value.
    arguments = {"city": "sample", "unit": "celsius"}
    assert len(answer.tool_calls) == 1
    call_id, name, got_arguments = answer.tool_calls[0]
    assert (name, got_arguments) == ("get_weather", arguments)
    assert call_id
    assert answer.text == ""
    assert answer.finish == TOOL_FINISH[client]
    assert answer.input_tokens == expected_input_tokens(QUESTION)
    check_usage(answer, sim)
    check_route_headers(answer, upstream)
    check_upstream_tools(sim)

    weather = "Sunny and 21 degrees"
    turns += [Call(call_id, name, got_arguments), Result(call_id, weather)]
    final = await ask(gateway, client, route, turns, tools=[WEATHER], stream=stream)
    assert final.text == f"Tool get_weather returned: {weather}"
    assert final.tool_calls == []
    assert final.finish == NORMAL_FINISH[client]
    # Three messages: the question, the call (no text) and the result.
    assert final.input_tokens == expected_input_tokens(QUESTION, "", weather)
    check_usage(final, sim)
    check_upstream_tool_result(sim, call_id, weather)
    assert len(sim.requests) == 2


def check_upstream_tools(sim: RunningSimulator) -> None:
    """The tool definition reached the upstream in its own format, schema unchanged."""
    body = upstream_body(sim)
    if sim.dialect == "openai_chat":
        assert body["tools"] == [{"type": "function", "function": {
            "name": WEATHER.name, "description": WEATHER.description,
            "parameters": WEATHER.schema}}]
    elif sim.dialect == "anthropic_messages":
        assert body["tools"] == [{"name": WEATHER.name, "description": WEATHER.description,
                                  "input_schema": WEATHER.schema}]
    else:
        declaration = body["tools"][0]["functionDeclarations"][0]
        assert declaration["name"] == WEATHER.name
        schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
        assert schema == WEATHER.schema


def check_upstream_tool_result(sim: RunningSimulator, call_id: str, text: str) -> None:
    """The tool result reached the upstream in its own format, tied to the call."""
    body = upstream_body(sim)
    if sim.dialect == "openai_chat":
        call = body["messages"][1]
        assert call["role"] == "assistant"
        assert call["tool_calls"][0]["id"] == call_id
        assert call["tool_calls"][0]["function"]["name"] == "get_weather"
        result = body["messages"][2]
        assert result["role"] == "tool" and result["tool_call_id"] == call_id
        content = result["content"]
        assert (content if isinstance(content, str) else content[0]["text"]) == text
    elif sim.dialect == "anthropic_messages":
        use = body["messages"][1]["content"][0]
        assert use["type"] == "tool_use" and use["id"] == call_id
        assert use["input"] == {"city": "sample", "unit": "celsius"}
        message = body["messages"][2]
        assert message["role"] == "user"
        result = message["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call_id
        content = result["content"]
        assert (content if isinstance(content, str) else content[0]["text"]) == text
    else:
        contents = body["contents"]
        assert [c["role"] for c in contents] == ["user", "model", "user"]
        call = contents[1]["parts"][0]["functionCall"]
        assert call["name"] == "get_weather"
        assert call["args"] == {"city": "sample", "unit": "celsius"}
        response = contents[2]["parts"][0]["functionResponse"]
        assert response["name"] == "get_weather"
        assert response["response"] == {"result": text}
