"""Gemini `contents` and `systemInstruction` -> canonical messages (inbound requests).

A `user` turn may mix `functionResponse` parts with text and images; canonical tool results
live in `tool` messages, so such a turn is split into consecutive `tool` and `user` messages
in the original order. Model turns go through the same `PartFolder` as responses, so history
sent back decodes to the parts the response had. Function calls keep their wire `id`
unchanged (our server side issued it); calls without one get `call_<turn>_<n>`, and a
`functionResponse` without an id answers the oldest unanswered call of the same name, which
is how Gemini itself pairs them.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, Part, TextPart, ToolCallPart, ToolResultPart
from turnout.core.request import Message, Role
from turnout.dialects.gemini._wire import (
    arr,
    data,
    invalid_request,
    message,
    only_keys,
    string,
    unknown_field,
)
from turnout.dialects.gemini.fold import fold_parts
from turnout.dialects.gemini.parts import image_in

_DATA_KEYS = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
              "executableCode", "codeExecutionResult", "toolCall", "toolResponse")
_ROLE_KEYS = {
    "user": frozenset({"text", "inlineData", "fileData", "functionResponse",
                       "mediaResolution"}),
    "model": frozenset({"text", "thought", "thoughtSignature", "functionCall"}),
}
# Valid Gemini parts that have no canonical form.
_UNSUPPORTED = frozenset({"executableCode", "codeExecutionResult", "videoMetadata", "toolCall",
                          "toolResponse", "inlineData", "fileData", "partMetadata"})


class _Calls:
    """Ids of the function calls in a request, and which are still unanswered."""

    def __init__(self) -> None:
        self.turn = 0
        self._count = 0
        self._open: list[ToolCallPart] = []

    def call_id(self, wire_id: str | None) -> str:
        if wire_id is not None:
            return wire_id
        self._count += 1
        return f"call_{self.turn}_{self._count - 1}"

    def add(self, parts: list[Part]) -> None:
        self._open += [p for p in parts if isinstance(p, ToolCallPart)]

    def answer(self, wire_id: str | None, name: str, param: str) -> str:
        for call in self._open:
            if (call.id == wire_id) if wire_id is not None else (call.name == name):
                self._open.remove(call)
                return call.id
        if wire_id is not None:
            return wire_id
        raise InvalidRequest(f"function response `{name}` answers no earlier function call",
                             param=param)


def decode_system(value: Any) -> Message | None:
    content = message(value, "systemInstruction")
    only_keys(content, ("role", "parts"), "systemInstruction")
    texts: list[Part] = []
    for i, raw in enumerate(arr(content.get("parts", []), "systemInstruction.parts")):
        param = f"systemInstruction.parts.{i}"
        part = message(raw, param)
        for key in part:
            if key in _DATA_KEYS and key != "text":
                raise UnsupportedFeature("system instructions may hold text parts only",
                                         param=f"{param}.{key}")
        only_keys(part, ("text",), param)
        if "text" not in part:
            raise InvalidRequest("a system instruction part needs `text`", param=param)
        texts.append(TextPart(string(part["text"], f"{param}.text")))
    return Message("system", texts) if texts else None


def decode_contents(value: Any) -> list[Message]:
    items = arr(value, "contents")
    if not items:
        raise InvalidRequest("`contents` must not be empty", param="contents")
    calls = _Calls()
    messages: list[Message] = []
    for i, raw in enumerate(items):
        param = f"contents.{i}"
        content = message(raw, param)
        only_keys(content, ("role", "parts"), param)
        role = string(content.get("role", "user"), f"{param}.role") or "user"
        if role not in _ROLE_KEYS:
            raise InvalidRequest(f"role must be `user` or `model`, not `{role}`",
                                 param=f"{param}.role")
        parts = [message(p, f"{param}.parts.{j}")
                 for j, p in enumerate(arr(content.get("parts"), f"{param}.parts"))]
        if not parts:
            raise InvalidRequest("`parts` must not be empty", param=f"{param}.parts")
        for j, part in enumerate(parts):
            _check_part(part, role, f"{param}.parts.{j}")
        calls.turn = i
        if role == "model":
            folded = fold_parts(parts, f"{param}.parts", calls.call_id, invalid_request)
            calls.add(folded)
            messages.append(Message("assistant", folded))
        else:
            messages += _user_messages(parts, calls, f"{param}.parts")
    return messages


def _check_part(part: dict[str, Any], role: str, param: str) -> None:
    allowed = _ROLE_KEYS[role]
    for key in part:
        if key in allowed:
            continue
        if key in _ROLE_KEYS["user"] | _ROLE_KEYS["model"] and key not in _UNSUPPORTED:
            raise InvalidRequest(f"`{key}` cannot appear in a `{role}` turn",
                                 param=f"{param}.{key}")
        if key in _UNSUPPORTED:
            raise UnsupportedFeature(f"`{key}` parts are not supported in a `{role}` turn",
                                     param=f"{param}.{key}")
        raise unknown_field(param, key)
    data = [k for k in _DATA_KEYS if k in part]
    signature_only = role == "model" and not data and "thoughtSignature" in part
    if len(data) != 1 and not signature_only:
        raise InvalidRequest("a part must hold exactly one of text, inlineData, fileData, "
                             "functionCall or functionResponse", param=param)
    if "functionCall" in part:
        call = message(part["functionCall"], f"{param}.functionCall")
        only_keys(call, ("id", "name", "args"), f"{param}.functionCall")


def _user_messages(parts: list[Any], calls: _Calls, param: str) -> list[Message]:
    messages: list[Message] = []
    for j, part in enumerate(parts):
        where = f"{param}.{j}"
        decoded: Part
        role: Role
        if "functionResponse" in part:
            decoded, role = _tool_result(part["functionResponse"], calls,
                                         f"{where}.functionResponse"), "tool"
        elif "text" in part:
            decoded, role = TextPart(string(part["text"], f"{where}.text")), "user"
        else:
            decoded, role = image_in(part, where), "user"
        if messages and messages[-1].role == role:
            messages[-1].parts.append(decoded)
        else:
            messages.append(Message(role, [decoded]))
    return messages


def _tool_result(value: Any, calls: _Calls, param: str) -> ToolResultPart:
    response = message(value, param)
    for key in ("willContinue", "scheduling"):
        if key in response:
            raise UnsupportedFeature(f"`{key}` is not supported", param=f"{param}.{key}")
    only_keys(response, ("id", "name", "response", "parts"), param)
    name = string(response.get("name"), f"{param}.name")
    result = data(response.get("response"), f"{param}.response")
    wire_id = response.get("id")
    if wire_id is not None:
        wire_id = string(wire_id, f"{param}.id") or None
    text, is_error = _result_text(result)
    content: list[TextPart | ImagePart] = [TextPart(text)] if text else []
    for k, raw in enumerate(arr(response.get("parts", []), f"{param}.parts")):
        item = message(raw, f"{param}.parts.{k}")
        only_keys(item, ("inlineData", "fileData"), f"{param}.parts.{k}")
        content.append(image_in(item, f"{param}.parts.{k}"))
    return ToolResultPart(calls.answer(wire_id, name, param), content, is_error, name)


def _result_text(result: dict[str, Any]) -> tuple[str, bool]:
    """Text of a `response` object: the inverse of how requests wrap results (`result`,
    `error`, or the object itself)."""
    if set(result) == {"result"} and isinstance(result["result"], str):
        return result["result"], False
    if set(result) == {"error"}:
        error = result["error"]
        return (error if isinstance(error, str) else orjson.dumps(error).decode()), True
    return orjson.dumps(result).decode(), False
