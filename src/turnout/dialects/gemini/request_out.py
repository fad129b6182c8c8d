"""Canonical request -> Gemini `generateContent` / `streamGenerateContent` HTTP request.

Choices where the canonical model and Gemini differ:
- System messages are hoisted into `systemInstruction` (joined by blank lines, in order).
- Tool results become `functionResponse` parts of a `user` turn. Gemini needs the function's
  name: `ToolResultPart.name`, else the name of the earlier call with that id, else
  `InvalidRequest`. `response` must be an object: the result itself when its text is a JSON
  object, else `{"result": text}`; errors are `{"error": <text or object>}`.
- Function-call ids go upstream only when Gemini issued them (see `_wire.ISSUED_ID_PREFIX`).
- Tool schemas go as `parametersJsonSchema` and structured output as `responseJsonSchema`:
  both take plain JSON Schema, so schemas pass unchanged (no lossy OpenAPI conversion).
- `strict` tools with automatic tool choice use mode `VALIDATED` (schema-constrained calls);
  `ANY` is constrained already.
- `parallel_tool_calls=False` with tools raises `UnsupportedFeature`: Gemini cannot forbid
  parallel calls.
- Not sent, on purpose: `user` (an abuse-tracking id with no effect on the answer),
  `metadata` (the gateway's own tags), `Message.name` (no Gemini field; advisory in OpenAI),
  `ImagePart.detail` (a hint; v1beta has no stable per-part equivalent) and
  `include_usage` (Gemini always reports usage).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, TextPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest, Message, ThinkingConfig, ToolDefinition
from turnout.dialects.base import HttpRequest, UpstreamTarget
from turnout.dialects.gemini._wire import issued_id_out
from turnout.dialects.gemini.parts import image_out, model_parts_out


def build_request(request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
    """The HTTP request for `target`; raises `UnsupportedFeature`/`InvalidRequest`."""
    model = target.model
    path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
    url = f"{target.base_url}/{quote(path, safe='/-._~')}:{method}"
    headers = {"content-type": "application/json"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key
    headers.update(target.headers)
    return HttpRequest("POST", url, headers, orjson.dumps(request_body(request)))


def request_body(request: ChatRequest) -> dict[str, Any]:
    """The `GenerateContentRequest` JSON for a canonical request."""
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = _system(request.messages)
    if system is not None:
        body["systemInstruction"] = system
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    tool_config = _tool_config(request)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


def _system(messages: list[Message]) -> dict[str, Any] | None:
    texts = []
    for i, message in enumerate(messages):
        if message.role != "system":
            continue
        if any(not isinstance(p, TextPart) for p in message.parts):
            raise UnsupportedFeature("Gemini system instructions hold text only",
                                     param=f"messages.{i}")
        texts.append(message.text())
    if not texts:
        return None
    return {"parts": [{"text": "\n\n".join(texts)}]}


def _contents(messages: list[Message]) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for i, message in enumerate(messages):
        param = f"messages.{i}"
        if message.role == "system":
            continue
        if message.role == "assistant":
            role = "model"
            parts = model_parts_out(message.parts, issued_id_out, f"{param}.parts")
            names.update((p.id, p.name) for p in message.parts if isinstance(p, ToolCallPart))
        else:
            role = "user"
            parts = [_user_part(p, names, f"{param}.parts.{j}")
                     for j, p in enumerate(message.parts)]
            parts = [p for p in parts if p]
        if not parts:
            continue  # Gemini rejects empty turns; an empty message says nothing anyway
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # Gemini wants turns to alternate
        else:
            contents.append({"role": role, "parts": parts})
    if not contents:
        raise InvalidRequest("Gemini needs at least one user or assistant message",
                             param="messages")
    return contents


def _user_part(part: Any, names: dict[str, str], param: str) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text} if part.text else {}
    if isinstance(part, ImagePart):
        return image_out(part, param)
    if isinstance(part, ToolResultPart):
        return _function_response(part, names, param)
    raise InvalidRequest(f"a {part.kind} part cannot appear in a user or tool message",
                         param=param)


def _function_response(part: ToolResultPart, names: dict[str, str], param: str
                       ) -> dict[str, Any]:
    name = part.name or names.get(part.tool_call_id)
    if not name:
        raise InvalidRequest(
            f"Gemini needs the function name of tool result `{part.tool_call_id}`: no earlier "
            "tool call has that id and the result names no tool", param=param)
    response: dict[str, Any] = {"name": name, "response": _response_object(part)}
    wire_id = issued_id_out(part.tool_call_id)
    if wire_id is not None:
        response = {"id": wire_id, **response}
    images = [image_out(p, f"{param}.content.{k}")
              for k, p in enumerate(part.content) if isinstance(p, ImagePart)]
    if images:
        response["parts"] = images
    return {"functionResponse": response}


def _response_object(part: ToolResultPart) -> dict[str, Any]:
    text = part.text()
    value: Any = text
    try:
        parsed = orjson.loads(text) if text.lstrip().startswith("{") else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        value = parsed
    if part.is_error:
        return {"error": value}
    return value if isinstance(value, dict) else {"result": text}


def _declaration(tool: ToolDefinition) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    declaration["parametersJsonSchema"] = tool.parameters
    return declaration


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if not request.tools:
        if choice is not None and choice.mode in ("required", "tool"):
            raise InvalidRequest("tool_choice requires tools", param="tool_choice")
        return None
    if request.parallel_tool_calls is False:
        raise UnsupportedFeature("Gemini cannot forbid parallel function calls",
                                 param="parallel_tool_calls")
    config: dict[str, Any]
    if choice is None or choice.mode == "auto":
        if not any(t.strict for t in request.tools):
            return None if choice is None else {"functionCallingConfig": {"mode": "AUTO"}}
        config = {"mode": "VALIDATED"}
    elif choice.mode == "none":
        config = {"mode": "NONE"}
    elif choice.mode == "required":
        config = {"mode": "ANY"}
    else:
        if not choice.name or choice.name not in {t.name for t in request.tools}:
            raise InvalidRequest(f"tool_choice names unknown tool `{choice.name}`",
                                 param="tool_choice")
        config = {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"functionCallingConfig": config}


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in (
        ("temperature", request.temperature), ("topP", request.top_p),
        ("topK", request.top_k), ("maxOutputTokens", request.max_tokens),
        ("seed", request.seed), ("presencePenalty", request.presence_penalty),
        ("frequencyPenalty", request.frequency_penalty),
    ):
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema":
            if fmt.schema is None:
                raise InvalidRequest("json_schema response format needs a schema",
                                     param="response_format")
            config["responseJsonSchema"] = fmt.schema
    if request.thinking is not None:
        config["thinkingConfig"] = _thinking(request.thinking)
    return config


def _thinking(thinking: ThinkingConfig) -> dict[str, Any]:
    if not thinking.enabled:
        return {"thinkingBudget": 0}
    config: dict[str, Any] = {"includeThoughts": True}
    # Gemini rejects a budget together with a level; an explicit budget is the more precise.
    if thinking.budget_tokens is not None:
        config["thinkingBudget"] = thinking.budget_tokens
    elif thinking.effort is not None:
        config["thinkingLevel"] = thinking.effort.upper()
    return config
