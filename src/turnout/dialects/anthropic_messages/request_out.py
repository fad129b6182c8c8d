"""Outbound: a canonical `ChatRequest` into an HTTP request for the Anthropic Messages API.

Anything the Messages API (version `2023-06-01`) cannot express raises `UnsupportedFeature`;
nothing is dropped silently, with two deliberate exceptions documented where they happen
(empty text parts and unsigned thinking parts, which Anthropic would reject outright).
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.request import ChatRequest, ThinkingConfig
from turnout.dialects.anthropic_messages.content_out import encode_messages, encode_system
from turnout.dialects.anthropic_messages.wire import ANTHROPIC_VERSION
from turnout.dialects.base import HttpRequest, UpstreamTarget

DEFAULT_MAX_TOKENS = 4096
"""`max_tokens` when the canonical request has none (Anthropic requires it; the engine
normally fills it from the model catalog first)."""

EFFORT_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
"""Thinking budget (tokens) for an effort-only `ThinkingConfig` (OpenAI-style clients).
`minimal` is Anthropic's smallest budget; each level doubles or more. A budget derived from
effort is capped below `max_tokens` (Anthropic requires budget < max_tokens); an explicit
budget is sent unchanged. No budget and no effort (an "adaptive" client) means `medium`."""

MIN_THINKING_BUDGET = 1024


def build_request(request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
    """The POST `/messages` request for `target`."""
    headers = {
        "content-type": "application/json",
        "anthropic-version": ANTHROPIC_VERSION,
    }
    if target.api_key:
        headers["x-api-key"] = target.api_key
    headers.update(target.headers)
    body = encode_body(request, target.model)
    return HttpRequest("POST", f"{target.base_url}/messages", headers, orjson.dumps(body))


def encode_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The JSON body of a Messages API call for `request`, addressed to `model`."""
    _reject_unsupported(request)
    max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": encode_messages(request.messages),
    }
    system = encode_system(request.messages)
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [_tool(t.name, t.description, t.parameters, t.strict)
                         for t in request.tools]
    tool_choice = _tool_choice(request)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    for key in ("temperature", "top_p", "top_k"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    if request.thinking is not None:
        body["thinking"] = _thinking(request.thinking, max_tokens)
    if request.stream:
        body["stream"] = True
    return body


def _reject_unsupported(request: ChatRequest) -> None:
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        raise UnsupportedFeature(
            f"response_format {fmt.type!r} cannot be expressed on the Anthropic Messages API "
            f"(version {ANTHROPIC_VERSION}); use a tool with an input schema instead",
            param="response_format")
    for name in ("seed", "frequency_penalty", "presence_penalty"):
        if getattr(request, name) is not None:
            raise UnsupportedFeature(f"{name} is not supported by the Anthropic Messages API",
                                     param=name)
    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if value is not None and not 0.0 <= value <= 1.0:
            # OpenAI allows temperature up to 2; rescaling would change its meaning.
            raise UnsupportedFeature(
                f"{name} {value} is outside the Anthropic Messages API's range 0..1",
                param=name)


def _tool(
    name: str, description: str | None, schema: dict[str, Any], strict: bool | None
) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name}
    if description:
        tool["description"] = description
    tool["input_schema"] = schema
    if strict is not None:
        tool["strict"] = strict
    return tool


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    mode = choice.mode if choice is not None else "auto"
    if not request.tools:
        if mode in ("required", "tool"):
            raise InvalidRequest(f"tool_choice {mode!r} needs at least one tool",
                                 param="tool_choice")
        return None  # nothing to choose from: "auto" and "none" mean the same
    if mode == "none":
        return {"type": "none"}
    wire: dict[str, Any]
    if mode == "tool":
        if not choice or not choice.name:
            raise InvalidRequest("tool_choice 'tool' needs a tool name", param="tool_choice")
        wire = {"type": "tool", "name": choice.name}
    else:
        wire = {"type": "any" if mode == "required" else "auto"}
    if request.parallel_tool_calls is False:
        wire["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # default behaviour: leave it to the API
    return wire


def _thinking(config: ThinkingConfig, max_tokens: int) -> dict[str, Any]:
    if not config.enabled:
        return {"type": "disabled"}
    if config.budget_tokens is not None:
        return {"type": "enabled", "budget_tokens": config.budget_tokens}
    budget = min(EFFORT_BUDGETS[config.effort or "medium"], max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        raise InvalidRequest(
            f"thinking needs max_tokens above {MIN_THINKING_BUDGET} on Anthropic "
            f"(got {max_tokens})", param="max_tokens")
    return {"type": "enabled", "budget_tokens": budget}
