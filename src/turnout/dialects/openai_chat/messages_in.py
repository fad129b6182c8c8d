"""Inbound: the `messages` array of a Chat Completions request into canonical messages.

Messages, content parts, image URLs and tool calls follow the dialect's one rule for keys
(`_fields.check_keys`), like the top level of the request."""

from __future__ import annotations

from typing import Any

from turnout.core.errors import InvalidRequest, UnsupportedFeature
from turnout.core.parts import ImagePart, Part, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import Message
from turnout.dialects.json_types import keys, type_name
from turnout.dialects.openai_chat._fields import (
    bad_value,
    check_keys,
    opt_str,
    req_list,
    req_object,
    req_str,
    wrong_type,
)

_ROLES = "'system', 'developer', 'user', 'assistant', 'tool'"
_IMAGE_DETAILS = ("auto", "low", "high", "original")

# Keys each role may carry (null counts as absent, as SDKs write it when a returned message is
# echoed back). Web-search `annotations` echoed back with an assistant message are metadata
# only; `audio` and `function_call` are real but cannot be carried.
_ROLE_KEYS = {
    "system": keys("role content name"),
    "developer": keys("role content name"),
    "user": keys("role content name"),
    "assistant": keys("role content name tool_calls refusal reasoning_content reasoning",
                      advisory="annotations", unsupported="audio function_call"),
    # Tool messages have no `name` in OpenAI's schema, but common clients send the tool's
    # name there; it is a fallback for `ToolResultPart.name`.
    "tool": keys("role content name tool_call_id"),
}
# Prompt-cache hints on a content part change cost, never the answer: ignored.
_HINTS = "prompt_cache_breakpoint cache_control"
_PART_KEYS = {"text": keys("type text", advisory=_HINTS),
              "image_url": keys("type image_url", advisory=_HINTS),
              "refusal": keys("type refusal")}
_IMAGE_URL_KEYS = keys("url detail")
_TOOL_CALL_KEYS = keys("id type function")
_CALLED_FUNCTION_KEYS = keys("name arguments")


def decode_messages(value: Any) -> list[Message]:
    """Validate `messages` and convert it. Raises `InvalidRequest`/`UnsupportedFeature`."""
    items = req_list(value, "messages")
    if not items:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.", param="messages")
    tool_names: dict[str, str] = {}
    messages: list[Message] = []
    for i, item in enumerate(items):
        message = _decode_message(item, f"messages[{i}]", tool_names)
        if message.role == "assistant":
            for call in message.tool_calls():
                tool_names[call.id] = call.name
        messages.append(message)
    return messages


def _decode_message(item: Any, param: str, tool_names: dict[str, str]) -> Message:
    obj = req_object(item, param)
    role = obj.get("role")
    if not isinstance(role, str):
        raise (InvalidRequest(f"Missing required parameter: '{param}.role'.", param=f"{param}.role")
               if role is None else wrong_type(f"{param}.role", "a string", role))
    if role in _ROLE_KEYS:
        check_keys(obj, param, _ROLE_KEYS[role])
    if role in ("system", "developer", "user"):
        parts = _content_parts(obj.get("content"), f"{param}.content", images=role == "user")
        name = opt_str(obj.get("name"), f"{param}.name")
        return Message("user" if role == "user" else "system", parts, name)
    if role == "assistant":
        return _assistant(obj, param)
    if role == "tool":
        call_id = req_str(obj.get("tool_call_id"), f"{param}.tool_call_id")
        parts = _content_parts(obj.get("content"), f"{param}.content", images=False)
        text = [p for p in parts if isinstance(p, TextPart)]
        name = tool_names.get(call_id) or opt_str(obj.get("name"), f"{param}.name")
        result = ToolResultPart(call_id, list(text), name=name)
        return Message("tool", [result])
    if role == "function":
        raise UnsupportedFeature(
            "The deprecated 'function' role is not supported; use 'tool' messages.",
            param=f"{param}.role")
    raise bad_value(f"{param}.role", role, _ROLES)


def _content_parts(value: Any, param: str, *, images: bool) -> list[Part]:
    if isinstance(value, str):
        return [TextPart(value)]
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if not isinstance(value, list):
        raise wrong_type(param, "a string or an array of content parts", value)
    return [_content_part(part, f"{param}[{j}]", images) for j, part in enumerate(value)]


def _content_part(value: Any, param: str, images: bool) -> Part:
    obj = req_object(value, param)
    kind = req_str(obj.get("type"), f"{param}.type")
    if kind == "text":
        check_keys(obj, param, _PART_KEYS["text"])
        return TextPart(req_str(obj.get("text"), f"{param}.text"))
    if kind == "image_url" and images:
        check_keys(obj, param, _PART_KEYS["image_url"])
        return _image(obj.get("image_url"), f"{param}.image_url")
    if kind in ("input_audio", "file") and images:
        raise UnsupportedFeature(
            f"Content parts of type '{kind}' are not supported.", param=f"{param}.type")
    allowed = "'text', 'image_url'" if images else "'text'"
    raise bad_value(f"{param}.type", kind, allowed)


def _image(value: Any, param: str) -> ImagePart:
    obj = req_object(value, param)
    check_keys(obj, param, _IMAGE_URL_KEYS)
    url = req_str(obj.get("url"), f"{param}.url")
    detail = opt_str(obj.get("detail"), f"{param}.detail")
    if detail is not None and detail not in _IMAGE_DETAILS:
        raise bad_value(f"{param}.detail", detail, "'auto', 'low', 'high', 'original'")
    image = ImagePart(url, detail)
    if image.is_data_url:
        try:
            image.data_url_parts()
        except ValueError as exc:
            raise InvalidRequest(f"Invalid '{param}.url': {exc}.", param=f"{param}.url") from None
    elif not url.startswith(("https://", "http://")):
        raise InvalidRequest(
            f"Invalid '{param}.url': expected an http(s) URL or a base64 data URL.",
            param=f"{param}.url")
    return image


def _assistant(obj: dict[str, Any], param: str) -> Message:
    parts: list[Part] = []
    for key in ("reasoning_content", "reasoning"):
        # vLLM and DeepSeek send `reasoning_content`, OpenRouter `reasoning`; clients echo
        # either back. Only one is kept: some servers send both with the same text.
        thought = opt_str(obj.get(key), f"{param}.{key}")
        if thought:
            parts.append(ThinkingPart(thought))
            break
    content = obj.get("content")
    if content is not None:
        parts.extend(_assistant_content(content, f"{param}.content"))
    refusal = opt_str(obj.get("refusal"), f"{param}.refusal")
    if refusal:
        parts.append(TextPart(refusal))
    raw_calls = obj.get("tool_calls")
    calls = [] if raw_calls is None else req_list(raw_calls, f"{param}.tool_calls")
    for j, call in enumerate(calls):
        parts.append(_tool_call(call, f"{param}.tool_calls[{j}]"))
    if content is None and not calls:
        raise InvalidRequest(
            f"Invalid '{param}': an assistant message needs 'content' or 'tool_calls'.",
            param=f"{param}.content")
    return Message("assistant", parts, opt_str(obj.get("name"), f"{param}.name"))


def _assistant_content(value: Any, param: str) -> list[Part]:
    if isinstance(value, str):
        return [TextPart(value)] if value else []
    if not isinstance(value, list):
        raise wrong_type(param, "a string, an array of content parts or null", value)
    parts: list[Part] = []
    for j, item in enumerate(value):
        item_param = f"{param}[{j}]"
        obj = req_object(item, item_param)
        kind = req_str(obj.get("type"), f"{item_param}.type")
        if kind in _PART_KEYS and kind != "image_url":
            check_keys(obj, item_param, _PART_KEYS[kind])
        if kind == "text":
            parts.append(TextPart(req_str(obj.get("text"), f"{item_param}.text")))
        elif kind == "refusal":
            # A refusal in history is what the assistant said: plain text to any model.
            parts.append(TextPart(req_str(obj.get("refusal"), f"{item_param}.refusal")))
        else:
            raise bad_value(f"{item_param}.type", kind, "'text', 'refusal'")
    return parts


def _tool_call(value: Any, param: str) -> ToolCallPart:
    obj = req_object(value, param)
    kind = obj.get("type", "function")
    if kind == "custom":
        raise UnsupportedFeature("Custom tool calls are not supported.", param=f"{param}.type")
    if kind != "function":
        raise bad_value(f"{param}.type", kind, "'function'")
    check_keys(obj, param, _TOOL_CALL_KEYS)
    call_id = req_str(obj.get("id"), f"{param}.id")
    function = req_object(obj.get("function"), f"{param}.function")
    check_keys(function, f"{param}.function", _CALLED_FUNCTION_KEYS)
    name = req_str(function.get("name"), f"{param}.function.name")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        raise (InvalidRequest(f"Missing required parameter: '{param}.function.arguments'.",
                              param=f"{param}.function.arguments")
               if arguments is None else
               InvalidRequest(f"Invalid type for '{param}.function.arguments': expected a JSON "
                              f"string, but got {type_name(arguments)}.",
                              param=f"{param}.function.arguments"))
    return ToolCallPart(call_id, name, arguments)
