"""Outbound: a canonical request into an HTTP request for an OpenAI-compatible provider.

Not forwarded on purpose: `metadata` (the gateway's own tags; OpenAI refuses it without
`store`), thinking signatures and history thinking (see `_assistant`), and `is_error` on
tool results (Chat Completions has no such flag; the result text is sent as is).
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, Part, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest, Message, ResponseFormat, ThinkingConfig, ToolChoice
from turnout.dialects.base import HttpRequest, UpstreamTarget
from turnout.dialects.openai_chat.response import tool_call_wire

# `ThinkingConfig.budget_tokens` -> `reasoning_effort`, for requests that came from a
# budget-based dialect (Anthropic, Gemini): the first bound the budget does not exceed, else
# `high`. Below Anthropic's minimum budget (1024) is `minimal`; up to 4k `low`; the common
# 8k-16k budgets `medium`; anything larger `high`.
BUDGET_TO_EFFORT: tuple[tuple[int, str], ...] = (
    (1023, "minimal"), (4096, "low"), (16384, "medium"),
)


def build_request(request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
    """POST `{base_url}/chat/completions` with the body for `target.model`."""
    headers = {"Content-Type": "application/json"}
    if target.api_key is not None:
        headers["Authorization"] = f"Bearer {target.api_key}"
    headers.update(target.headers)
    return HttpRequest(
        method="POST",
        url=f"{target.base_url}/chat/completions",
        headers=headers,
        body=orjson.dumps(build_body(request, target.model)),
    )


def build_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The JSON body (a dict), separate from `build_request` for tests and simulators."""
    if request.top_k is not None:
        raise UnsupportedFeature("Chat Completions has no 'top_k' parameter.", param="top_k")
    body: dict[str, Any] = {"model": model, "messages": _messages(request.messages)}
    if request.tools:
        body["tools"] = [_tool(t.name, t.description, t.parameters, t.strict)
                         for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        body["response_format"] = _response_format(request.response_format)
    effort = _effort(request.thinking)
    if effort is not None:
        body["reasoning_effort"] = effort
    if request.max_tokens is not None:
        # Reasoning models refuse `max_tokens`; the others (and older local servers) may
        # not know `max_completion_tokens`.
        body["max_completion_tokens" if effort else "max_tokens"] = request.max_tokens
    for key in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "seed",
                "user"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.stop:
        body["stop"] = list(request.stop)
    if request.stream:
        # Always ask for usage: the gateway bills and budgets from it.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _tool(name: str, description: str | None, parameters: dict[str, Any],
          strict: bool | None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if description is not None:
        function["description"] = description
    function["parameters"] = parameters
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> Any:
    if choice.mode == "tool":
        if not choice.name:
            raise InvalidRequest("tool_choice 'tool' needs a tool name.", param="tool_choice")
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    # OpenAI requires a name; the other dialects have none to give.
    spec: dict[str, Any] = {"name": fmt.name or "response"}
    if fmt.description is not None:
        spec["description"] = fmt.description
    if fmt.schema is not None:
        spec["schema"] = fmt.schema
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


def _effort(thinking: ThinkingConfig | None) -> str | None:
    if thinking is None:
        return None
    if not thinking.enabled:
        # Explicitly off. Reasoning models that cannot turn reasoning off answer 400, which
        # is better than paying for reasoning the caller refused.
        return "none"
    if thinking.effort is not None:
        return thinking.effort
    if thinking.budget_tokens is not None:
        for bound, effort in BUDGET_TO_EFFORT:
            if thinking.budget_tokens <= bound:
                return effort
        return "high"
    return "medium"  # enabled without a level: OpenAI's own default


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if message.role == "tool":
            out.extend(_tool_results(message, param))
        elif message.role == "assistant":
            out.append(_assistant(message, param))
        else:
            wire: dict[str, Any] = {
                "role": message.role,
                "content": _content(message.parts, param, images=message.role == "user"),
            }
            if message.name is not None:
                wire["name"] = message.name
            out.append(wire)
    return out


def _content(parts: list[Part], param: str, *, images: bool) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    wire: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            wire.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart) and images:
            image: dict[str, Any] = {"url": part.url}
            if part.detail is not None:
                image["detail"] = part.detail
            wire.append({"type": "image_url", "image_url": image})
        else:
            raise _cannot(part, param)
    return wire


def _assistant(message: Message, param: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(tool_call_wire(part))
        elif isinstance(part, ThinkingPart):
            # Chat Completions has no input field for reasoning: OpenAI keeps reasoning
            # server-side and the OpenAI-compatible servers drop or reject it. Omitting it
            # is what their own clients do.
            continue
        else:
            raise _cannot(part, param)
    wire: dict[str, Any] = {"role": "assistant"}
    # Content may be null only next to tool calls; an otherwise empty turn sends "".
    wire["content"] = "".join(texts) if texts or not calls else None
    if calls:
        wire["tool_calls"] = calls
    if message.name is not None:
        wire["name"] = message.name
    return wire


def _tool_results(message: Message, param: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in message.parts:
        if not isinstance(part, ToolResultPart):
            raise _cannot(part, param)
        if any(isinstance(p, ImagePart) for p in part.content):
            raise UnsupportedFeature(
                "Chat Completions tool results carry text only, not images.", param=param)
        out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": part.text()})
    return out


def _cannot(part: Part, param: str) -> UnsupportedFeature:
    return UnsupportedFeature(
        f"A '{part.kind}' part cannot be sent in this Chat Completions message.", param=param)
