"""Gemini `GenerateContentRequest` JSON -> canonical `ChatRequest` (inbound).

The model and streaming come from the URL (`/models/{model}:generateContent` or
`:streamGenerateContent`). Decisions:
- `safetySettings` are validated and ignored: safety thresholds are Gemini's own policy and
  have no canonical form; a client sending them still gets an answer.
- `cachedContent` raises `UnsupportedFeature`: it names a server-side cache we do not hold.
- Built-in tools (`googleSearch`, `codeExecution`, ...) and non-text output modalities raise
  `UnsupportedFeature`; unknown fields raise `InvalidRequest` naming them, as Gemini does.
- `thinkingConfig`: budget 0 disables thinking, -1 (dynamic) enables it without a budget,
  `thinkingLevel` becomes the canonical effort. `includeThoughts` has no canonical field
  (thinking, when enabled, is always returned to the gateway).
- Integers are read as proto3 JSON reads them (`5`, `5.0`, `1e3` or `"5"`), within the
  field's proto type (int32 for every `generationConfig` integer); numbers within the
  documented ranges; carried JSON (schemas, `args`, `response`) must encode again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.request import (
    ChatRequest,
    ResponseFormat,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
)
from turnout.dialects.gemini._wire import (
    arr,
    boolean,
    data,
    integer,
    message,
    number,
    only_keys,
    string,
)
from turnout.dialects.gemini.contents_in import decode_contents, decode_system
from turnout.dialects.gemini.schema import openapi_to_json_schema
from turnout.dialects.json_types import INT32_MAX, INT32_MIN

_TOP_LEVEL = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
              "safetySettings", "cachedContent", "model")
_GENERATION = ("temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "seed",
               "presencePenalty", "frequencyPenalty", "candidateCount", "responseMimeType",
               "responseSchema", "responseJsonSchema", "thinkingConfig", "responseModalities")
# Known generationConfig fields with no canonical form: accepted only when unset or false.
_GENERATION_UNSUPPORTED = ("responseLogprobs", "logprobs", "speechConfig", "mediaResolution",
                           "audioTimestamp", "enableEnhancedCivicAnswers", "imageConfig",
                           "routingConfig", "modelSelectionConfig", "enableAffectiveDialog")
_BUILTIN_TOOLS = ("googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext",
                  "fileSearch", "computerUse", "googleMaps", "retrieval",
                  "enterpriseWebSearch", "mcpServers")
Effort = Literal["minimal", "low", "medium", "high"]
_EFFORTS: dict[str, Effort] = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium",
                               "HIGH": "high"}


def decode_request(
    body: Any, *, model: str | None = None, stream: bool | None = None
) -> ChatRequest:
    """Validate a parsed Gemini request body into a `ChatRequest`."""
    body = message(body, "body")
    only_keys(body, _TOP_LEVEL, "")
    if body.get("cachedContent") is not None:
        raise UnsupportedFeature("cached content is not supported", param="cachedContent")
    for i, setting in enumerate(arr(body.get("safetySettings", []), "safetySettings")):
        only_keys(message(setting, f"safetySettings.{i}"), ("category", "threshold", "method"),
                  f"safetySettings.{i}")
    name = model if model is not None else body.get("model")
    name = string(name, "model") if name is not None else ""
    name = name.removeprefix("models/")
    if not name:
        raise InvalidRequest("the model is missing from the URL", param="model")
    messages = decode_contents(body.get("contents"))
    if body.get("systemInstruction") is not None:
        system = decode_system(body["systemInstruction"])
        if system is not None:
            messages.insert(0, system)
    request = ChatRequest(model=name, messages=messages, stream=bool(stream))
    if body.get("tools") is not None:
        request.tools = _tools(body["tools"])
    if body.get("toolConfig") is not None:
        _tool_config(body["toolConfig"], request)
    if body.get("generationConfig") is not None:
        _generation_config(body["generationConfig"], request)
    return request


def _tools(value: Any) -> list[ToolDefinition]:
    tools: list[ToolDefinition] = []
    for i, raw in enumerate(arr(value, "tools")):
        tool = message(raw, f"tools.{i}")
        for key in tool:
            if key in _BUILTIN_TOOLS:
                raise UnsupportedFeature(f"built-in tool `{key}` is not supported",
                                         param=f"tools.{i}.{key}")
        only_keys(tool, ("functionDeclarations",), f"tools.{i}")
        declarations = arr(tool.get("functionDeclarations", []),
                           f"tools.{i}.functionDeclarations")
        for j, declaration in enumerate(declarations):
            tools.append(_declaration(declaration, f"tools.{i}.functionDeclarations.{j}"))
    names = [t.name for t in tools]
    for name in names:
        if names.count(name) > 1:
            raise InvalidRequest(f"duplicate function name `{name}`", param="tools")
    return tools


def _declaration(value: Any, param: str) -> ToolDefinition:
    declaration = message(value, param)
    for key in ("response", "responseJsonSchema", "behavior"):
        if key in declaration:
            raise UnsupportedFeature(f"function `{key}` is not supported",
                                     param=f"{param}.{key}")
    only_keys(declaration, ("name", "description", "parameters", "parametersJsonSchema"), param)
    name = string(declaration.get("name"), f"{param}.name")
    if not name:
        raise InvalidRequest("function name must not be empty", param=f"{param}.name")
    description = declaration.get("description")
    tool = ToolDefinition(name, string(description, f"{param}.description")
                          if description is not None else None)
    if "parameters" in declaration and "parametersJsonSchema" in declaration:
        raise InvalidRequest("set `parameters` or `parametersJsonSchema`, not both",
                             param=param)
    if "parametersJsonSchema" in declaration:
        tool.parameters = data(declaration["parametersJsonSchema"],
                               f"{param}.parametersJsonSchema")
    elif declaration.get("parameters") is not None:
        tool.parameters = data(openapi_to_json_schema(declaration["parameters"],
                                                      f"{param}.parameters"),
                               f"{param}.parameters")
    return tool


def _tool_config(value: Any, request: ChatRequest) -> None:
    config = message(value, "toolConfig")
    if "retrievalConfig" in config:
        raise UnsupportedFeature("retrieval config is not supported",
                                 param="toolConfig.retrievalConfig")
    only_keys(config, ("functionCallingConfig",), "toolConfig")
    if config.get("functionCallingConfig") is None:
        return
    param = "toolConfig.functionCallingConfig"
    calling = message(config["functionCallingConfig"], param)
    only_keys(calling, ("mode", "allowedFunctionNames"), param)
    mode = string(calling.get("mode", "MODE_UNSPECIFIED"), f"{param}.mode")
    allowed = [string(n, f"{param}.allowedFunctionNames")
               for n in arr(calling.get("allowedFunctionNames", []),
                            f"{param}.allowedFunctionNames")]
    if allowed and mode not in ("ANY", "VALIDATED"):
        raise InvalidRequest("allowedFunctionNames needs mode ANY or VALIDATED",
                             param=f"{param}.allowedFunctionNames")
    known = {t.name for t in request.tools}
    for name in allowed:
        if name not in known:
            raise InvalidRequest(f"allowedFunctionNames names unknown function `{name}`",
                                 param=f"{param}.allowedFunctionNames")
    if mode == "MODE_UNSPECIFIED":
        return
    if mode == "AUTO":
        request.tool_choice = ToolChoice("auto")
    elif mode == "NONE":
        request.tool_choice = ToolChoice("none")
    elif mode in ("ANY", "VALIDATED"):
        request.tool_choice = _restricted(mode, allowed, known, param)
        if mode == "VALIDATED":
            for tool in request.tools:
                tool.strict = True
    else:
        raise InvalidRequest(f"unknown function calling mode `{mode}`", param=f"{param}.mode")


def _restricted(mode: str, allowed: list[str], known: set[str], param: str) -> ToolChoice:
    if len(set(allowed)) == 1 and mode == "ANY":
        return ToolChoice("tool", allowed[0])
    if allowed and set(allowed) != known:
        raise UnsupportedFeature("restricting calls to a subset of several functions is not "
                                 "supported", param=f"{param}.allowedFunctionNames")
    return ToolChoice("required" if mode == "ANY" else "auto")


_SCALAR_SETTINGS: tuple[tuple[str, str, Callable[[Any, str], Any]], ...] = (
    ("temperature", "temperature", partial(number, low=0.0, high=2.0)),
    ("topP", "top_p", partial(number, low=0.0, high=1.0)),
    ("topK", "top_k", partial(integer, low=0, high=INT32_MAX)),
    ("maxOutputTokens", "max_tokens", partial(integer, low=1, high=INT32_MAX)),
    ("seed", "seed", partial(integer, low=INT32_MIN, high=INT32_MAX)),
    ("presencePenalty", "presence_penalty", partial(number, low=-2.0, high=2.0)),
    ("frequencyPenalty", "frequency_penalty", partial(number, low=-2.0, high=2.0)),
)
"""`generationConfig` scalars: wire key, canonical field, validator (int32 fields, as
Gemini declares them; numbers in the ranges the providers document)."""


def _generation_config(value: Any, request: ChatRequest) -> None:
    config = message(value, "generationConfig")
    for key in _GENERATION_UNSUPPORTED:
        if config.get(key) not in (None, False):
            raise UnsupportedFeature(f"`{key}` is not supported", param=f"generationConfig.{key}")
    only_keys(config, (*_GENERATION, *_GENERATION_UNSUPPORTED), "generationConfig")
    p = "generationConfig."
    get = config.get
    for key, attr, parse in _SCALAR_SETTINGS:
        if get(key) is not None:
            setattr(request, attr, parse(get(key), p + key))
    request.stop = [string(s, p + "stopSequences")
                    for s in arr(get("stopSequences", []), p + "stopSequences")]
    if get("candidateCount") is not None and integer(
            get("candidateCount"), p + "candidateCount", low=INT32_MIN, high=INT32_MAX) != 1:
        raise UnsupportedFeature("only one candidate is supported", param=p + "candidateCount")
    modalities = arr(get("responseModalities", []), p + "responseModalities")
    if any(string(m, p + "responseModalities").upper() != "TEXT" for m in modalities):
        raise UnsupportedFeature("only text output is supported", param=p + "responseModalities")
    request.response_format = _response_format(config)
    if get("thinkingConfig") is not None:
        request.thinking = _thinking(get("thinkingConfig"))


def _response_format(config: dict[str, Any]) -> ResponseFormat | None:
    p = "generationConfig."
    mime = string(config.get("responseMimeType", "text/plain"), p + "responseMimeType")
    schema: dict[str, Any] | None = None
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise InvalidRequest("set `responseSchema` or `responseJsonSchema`, not both",
                             param=p + "responseSchema")
    if config.get("responseJsonSchema") is not None:
        schema = data(config["responseJsonSchema"], p + "responseJsonSchema")
    elif config.get("responseSchema") is not None:
        schema = data(openapi_to_json_schema(config["responseSchema"], p + "responseSchema"),
                      p + "responseSchema")
    if mime == "application/json":
        return ResponseFormat("json_schema", schema=schema) if schema is not None \
            else ResponseFormat("json_object")
    if mime not in ("text/plain", ""):
        raise UnsupportedFeature(f"response MIME type `{mime}` is not supported",
                                 param=p + "responseMimeType")
    if schema is not None:
        raise InvalidRequest("a response schema needs responseMimeType application/json",
                             param=p + "responseMimeType")
    return None


def _thinking(value: Any) -> ThinkingConfig | None:
    p = "generationConfig.thinkingConfig"
    config = message(value, p)
    only_keys(config, ("thinkingBudget", "includeThoughts", "thinkingLevel"), p)
    include = config.get("includeThoughts")
    if include is not None:
        include = boolean(include, f"{p}.includeThoughts")
    budget = config.get("thinkingBudget")
    level = config.get("thinkingLevel")
    if budget is not None and level is not None:
        raise InvalidRequest("set thinkingBudget or thinkingLevel, not both", param=p)
    if budget is not None:
        budget = integer(budget, f"{p}.thinkingBudget", low=INT32_MIN, high=INT32_MAX)
        if budget == 0:
            return ThinkingConfig(enabled=False)
        if budget < -1:
            raise InvalidRequest("thinkingBudget must be -1, 0 or positive",
                                 param=f"{p}.thinkingBudget")
        return ThinkingConfig(budget_tokens=budget if budget > 0 else None)
    if level is not None:
        effort = _EFFORTS.get(string(level, f"{p}.thinkingLevel").upper())
        if effort is None:
            raise UnsupportedFeature(f"thinking level `{level}` is not supported",
                                     param=f"{p}.thinkingLevel")
        return ThinkingConfig(effort=effort)
    return ThinkingConfig() if include else None
