"""A deterministic fake model: the answers every simulator gives.

The answer names the simulator and the model, so that a test can tell which deployment
answered: `Hello from <sim> (<model>). You said: <last user text>`. Tool calls, tool
results, structured output, stop sequences, `max_tokens`, thinking and usage all follow
fixed rules (documented on `respond`), so expected values can be derived by hand.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from turnout.core.parts import Part, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest, Message, ToolDefinition
from turnout.core.response import ChatResponse, FinishReason, Usage

TOKENS_PER_MESSAGE = 4
"""Fixed overhead added to the input token count for every message."""

_MAX_SCHEMA_DEPTH = 12
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def respond(
    request: ChatRequest, *, sim_name: str, response_id: str | None = None, created: int = 0
) -> ChatResponse:
    """The fake model's answer to `request`.

    - Tools given, `tool_choice` not `none`, last message from the user: one call of the tool
      named by `tool_choice` (else the first tool) with arguments synthesised from its schema,
      id `call_<sim_name>_<number of messages>`, finish `tool_calls`.
    - Last message a tool result: `Tool <name> returned: <result text>`.
    - Otherwise `Hello from <sim_name> (<model>). You said: <last user text>`.
    - `response_format` `json_object` wraps that text as `{"answer": ...}`; `json_schema`
      answers a document synthesised from the schema.
    - Stop sequences cut the text at the earliest match (finish `stop_sequence`); then
      `max_tokens` (counted in words) truncates it (finish `length`).
    - Thinking enabled: a `ThinkingPart` "Thinking about: <last user text>" comes first.
    - Usage: input = words of every message's text + 4 per message; output = words of the
      answer text, tool arguments and thinking (thinking words are also `reasoning_tokens`).
    """
    parts: list[Part] = []
    user_text = _last_user_text(request)
    reasoning = 0
    if request.thinking is not None and request.thinking.enabled:
        thought = f"Thinking about: {user_text}"
        parts.append(ThinkingPart(thought, signature=f"sig-{sim_name}"))
        reasoning = count_words(thought)
    finish: FinishReason = "stop"
    stop_sequence: str | None = None
    tool = _tool_to_call(request)
    if tool is not None:
        arguments = orjson.dumps(example_from_schema(tool.parameters)).decode()
        call_id = _UNSAFE_ID_CHARS.sub("_", f"call_{sim_name}_{len(request.messages)}")
        parts.append(ToolCallPart(call_id, tool.name, arguments))
        output_words = count_words(arguments)
        finish = "tool_calls"
    else:
        text = _answer_text(request, sim_name, user_text)
        text, stop_sequence = _apply_stop(text, request.stop)
        if stop_sequence is not None:
            finish = "stop_sequence"
        if request.max_tokens is not None and count_words(text) > request.max_tokens:
            text = truncate_words(text, request.max_tokens)
            finish, stop_sequence = "length", None
        parts.append(TextPart(text))
        output_words = count_words(text)
    usage = Usage(
        input_tokens=count_input_tokens(request),
        output_tokens=output_words + reasoning,
        reasoning_tokens=reasoning,
    )
    return ChatResponse(
        id=response_id or _UNSAFE_ID_CHARS.sub("_", f"resp_{sim_name}"),
        model=request.model,
        parts=parts,
        finish_reason=finish,
        stop_sequence=stop_sequence,
        usage=usage,
        created=created,
    )


def count_words(text: str) -> int:
    """Whitespace-separated words: the simulators' unit of tokens."""
    return len(text.split())


def count_input_tokens(request: ChatRequest) -> int:
    """Words of every message's text (tool results included) plus 4 per message."""
    return sum(count_words(_message_text(m)) + TOKENS_PER_MESSAGE for m in request.messages)


def truncate_words(text: str, limit: int) -> str:
    """The first `limit` words of `text`, with their original spacing."""
    if limit <= 0:
        return ""
    for i, match in enumerate(re.finditer(r"\S+", text)):
        if i == limit - 1:
            return text[: match.end()]
    return text


def example_from_schema(schema: Any, *, _root: Any = None, _depth: int = 0) -> Any:
    """A value that satisfies a JSON Schema, built by fixed rules: every property of an
    object, the first enum value, strings "sample", integers 1, numbers 1.5, booleans true,
    arrays of one element. Follows local `$ref`s (`#/$defs/...`) and the first `anyOf`/`oneOf`
    branch that is not null."""
    root = schema if _root is None else _root
    if not isinstance(schema, dict) or _depth > _MAX_SCHEMA_DEPTH:
        return None
    if "$ref" in schema:
        return example_from_schema(_resolve_ref(root, schema["$ref"]), _root=root,
                                   _depth=_depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            branches = [b for b in schema[key] if not (isinstance(b, dict)
                                                      and b.get("type") == "null")]
            return example_from_schema((branches or schema[key])[0], _root=root,
                                       _depth=_depth + 1)
    kind = _schema_type(schema)
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example_from_schema(sub, _root=root, _depth=_depth + 1)
                for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        return [example_from_schema(items if isinstance(items, dict) else {}, _root=root,
                                    _depth=_depth + 1)]
    return _SCALARS.get(kind, "sample")


_SCALARS: dict[str, Any] = {
    "string": "sample", "integer": 1, "number": 1.5, "boolean": True, "null": None,
}


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()  # Gemini spells types in upper case
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _resolve_ref(root: Any, ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return None
    node = root
    for key in ref[2:].split("/"):
        if not isinstance(node, dict):
            return None
        node = node.get(key.replace("~1", "/").replace("~0", "~"))
    return node


def _message_text(message: Message) -> str:
    texts = [p.text for p in message.parts if isinstance(p, TextPart)]
    texts += [p.text() for p in message.parts if isinstance(p, ToolResultPart)]
    return " ".join(texts)


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text()
    return ""


def _tool_to_call(request: ChatRequest) -> ToolDefinition | None:
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none"):
        return None
    if not request.messages or request.messages[-1].role != "user":
        return None
    if choice is not None and choice.mode == "tool" and choice.name:
        for tool in request.tools:
            if tool.name == choice.name:
                return tool
    return request.tools[0]


def _answer_text(request: ChatRequest, sim_name: str, user_text: str) -> str:
    text = _tool_results_text(request)
    if text is None:
        text = f"Hello from {sim_name} ({request.model}). You said: {user_text}"
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        return orjson.dumps(example_from_schema(fmt.schema or {"type": "object"})).decode()
    if fmt is not None and fmt.type == "json_object":
        return orjson.dumps({"answer": text}).decode()
    return text


def _tool_results_text(request: ChatRequest) -> str | None:
    """`Tool <name> returned: <text>` for each result of the trailing tool turn(s)."""
    results: list[ToolResultPart] = []
    for message in reversed(request.messages):
        if message.role != "tool":
            break
        results[:0] = [p for p in message.parts if isinstance(p, ToolResultPart)]
    if not results:
        return None
    names = {c.id: c.name for m in request.messages for c in m.tool_calls()}
    return "\n".join(
        f"Tool {r.name or names.get(r.tool_call_id, r.tool_call_id)} returned: {r.text()}"
        for r in results
    )


def _apply_stop(text: str, stop: list[str]) -> tuple[str, str | None]:
    best: tuple[int, str] | None = None
    for sequence in stop:
        if not sequence:
            continue
        position = text.find(sequence)
        if position >= 0 and (best is None or position < best[0]):
            best = (position, sequence)
    if best is None:
        return text, None
    return text[: best[0]], best[1]
