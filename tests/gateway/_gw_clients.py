"""One conversation, written once, sent through either official SDK (stream or not) and read
back into one shape, plus what the simulator must have answered to what it received."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from _gw_harness import Gateway
from openai.lib.streaming.chat import ChatCompletionStreamState

from turnout.core.response import ChatResponse
from turnout.dialects.registry import get_dialect
from turnout.sim.responder import respond
from turnout.sim.server import RunningSimulator

Client = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class Say:
    """A text turn: `system`, `user` or `assistant`."""

    role: Literal["system", "user", "assistant"]
    text: str


@dataclass(frozen=True)
class Call:
    """An assistant turn holding one tool call."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """A tool result for the call `id`."""

    id: str
    text: str


Turn = Say | Call | Result


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]


WEATHER = Tool("get_weather", "Current weather in a city", {
    "type": "object",
    "properties": {"city": {"type": "string"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
})


@dataclass
class Answer:
    """What a client got back, whichever SDK it used."""

    text: str
    tool_calls: list[tuple[str, str, dict[str, Any]]]
    finish: str | None
    input_tokens: int
    output_tokens: int
    headers: Mapping[str, str]
    extra: dict[str, Any] = field(default_factory=dict)


async def ask(gw: Gateway, client: Client, model: str, turns: Sequence[Turn], *,
              tools: Sequence[Tool] = (), stream: bool = False) -> Answer:
    if client == "openai":
        return await _ask_openai(gw, model, turns, tools, stream)
    return await _ask_anthropic(gw, model, turns, tools, stream)


# --- OpenAI -------------------------------------------------------------------------------

def openai_messages(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in turns:
        if isinstance(turn, Say):
            messages.append({"role": turn.role, "content": turn.text})
        elif isinstance(turn, Call):
            messages.append({"role": "assistant", "content": None, "tool_calls": [{
                "id": turn.id, "type": "function",
                "function": {"name": turn.name, "arguments": json.dumps(turn.arguments)}}]})
        else:
            messages.append({"role": "tool", "tool_call_id": turn.id, "content": turn.text})
    return messages


def openai_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.schema}} for t in tools]


async def _ask_openai(gw: Gateway, model: str, turns: Sequence[Turn], tools: Sequence[Tool],
                      stream: bool) -> Answer:
    kwargs: dict[str, Any] = {"model": model, "messages": openai_messages(turns)}
    if tools:
        kwargs["tools"] = openai_tools(tools)
    if stream:
        chunks = await gw.openai.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True})
        headers = chunks.response.headers
        # The SDK's own accumulator: it rejects chunks that break the protocol.
        state = ChatCompletionStreamState()
        async for chunk in chunks:
            state.handle_chunk(chunk)
        completion: Any = state.get_final_completion()
    else:
        raw = await gw.openai.chat.completions.with_raw_response.create(**kwargs)
        headers = raw.headers
        completion = raw.parse()
    assert completion.object == "chat.completion"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    message = choice.message
    assert message.role == "assistant"
    calls = [(c.id, c.function.name, json.loads(c.function.arguments))
             for c in message.tool_calls or []]
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    return Answer(text=message.content or "", tool_calls=calls, finish=choice.finish_reason,
                  input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                  headers=headers, extra={"model": completion.model})


# --- Anthropic ----------------------------------------------------------------------------

def anthropic_messages(turns: Sequence[Turn]) -> tuple[str | None, list[dict[str, Any]]]:
    system = "\n\n".join(t.text for t in turns if isinstance(t, Say) and t.role == "system")
    messages: list[dict[str, Any]] = []
    for turn in turns:
        if isinstance(turn, Say):
            if turn.role != "system":
                messages.append({"role": turn.role, "content": turn.text})
        elif isinstance(turn, Call):
            messages.append({"role": "assistant", "content": [
                {"type": "tool_use", "id": turn.id, "name": turn.name,
                 "input": turn.arguments}]})
        else:
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": turn.id, "content": turn.text}]})
    return system or None, messages


async def _ask_anthropic(gw: Gateway, model: str, turns: Sequence[Turn],
                         tools: Sequence[Tool], stream: bool) -> Answer:
    system, messages = anthropic_messages(turns)
    kwargs: dict[str, Any] = {"model": model, "max_tokens": 256, "messages": messages}
    if system is not None:
        kwargs["system"] = system
    if tools:
        kwargs["tools"] = [{"name": t.name, "description": t.description,
                            "input_schema": t.schema} for t in tools]
    if stream:
        # The SDK's stream helper folds the events and rejects out-of-order ones.
        async with gw.anthropic.messages.stream(**kwargs) as events:
            message = await events.get_final_message()
            headers = events.response.headers
    else:
        raw = await gw.anthropic.messages.with_raw_response.create(**kwargs)
        headers = raw.headers
        message = await raw.parse()
    assert message.type == "message" and message.role == "assistant"
    text = "".join(b.text for b in message.content if b.type == "text")
    calls = [(b.id, b.name, dict(b.input)) for b in message.content if b.type == "tool_use"]
    return Answer(text=text, tool_calls=calls, finish=message.stop_reason,
                  input_tokens=message.usage.input_tokens,
                  output_tokens=message.usage.output_tokens, headers=headers,
                  extra={"model": message.model})


# --- the simulator's side -----------------------------------------------------------------

def sim_answer(sim: RunningSimulator, index: int = -1) -> ChatResponse:
    """The answer the simulator computed for a request it recorded: decoded again from the
    upstream's own wire format and fed to the same deterministic responder."""
    recorded = sim.requests[index]
    dialect = get_dialect(sim.dialect)
    if sim.dialect == "gemini":
        model, _, method = recorded.path.rsplit("/", 1)[1].rpartition(":")
        request = dialect.decode_request(recorded.body, model=model,
                                         stream=method == "streamGenerateContent")
    else:
        request = dialect.decode_request(recorded.body)
    return respond(request, sim_name=sim.name)


def words(text: str) -> int:
    return len(text.split())
