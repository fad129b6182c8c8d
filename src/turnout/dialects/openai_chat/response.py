"""Complete (non-stream) responses: encode for clients, decode from providers."""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core.errors import MalformedResponse, UnsupportedFeature
from turnout.core.parts import Part, TextPart, ThinkingPart, ToolCallPart
from turnout.core.response import ChatResponse, FinishReason, Usage

# Canonical -> wire. `error` has no wire value; a response that ended in error and is still
# sent whole is closest to `stop` (the SDK rejects unknown values).
FINISH_TO_WIRE: dict[str, str] = {
    "stop": "stop", "stop_sequence": "stop", "length": "length", "tool_calls": "tool_calls",
    "content_filter": "content_filter", "error": "stop",
}
# Wire -> canonical. `function_call` is the legacy spelling of `tool_calls`; `abort` and
# `error` come from vLLM/OpenRouter. Unknown values (some local servers invent their own)
# fall back to `stop` in `finish_from_wire`.
_FINISH_FROM_WIRE: dict[str, FinishReason] = {
    "stop": "stop", "length": "length", "tool_calls": "tool_calls",
    "function_call": "tool_calls", "content_filter": "content_filter", "error": "error",
    "abort": "error",
}


def finish_from_wire(reason: str, stop_reason: Any) -> tuple[FinishReason, str | None]:
    """Canonical finish reason and matched stop sequence. vLLM reports the matched stop
    string in a non-standard `stop_reason`; OpenAI never says which sequence matched."""
    canonical = _FINISH_FROM_WIRE.get(reason, "stop")
    if canonical == "stop" and isinstance(stop_reason, str) and stop_reason:
        return "stop_sequence", stop_reason
    return canonical, None


def encode_usage(usage: Usage) -> dict[str, Any]:
    """The `usage` object of a completion or of the final stream chunk."""
    prompt_details: dict[str, int] = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def decode_usage(value: Any) -> Usage:
    """Usage from a wire `usage` object; absent (null) usage is all zeros."""
    if value is None:
        return Usage()
    if not isinstance(value, dict):
        raise _malformed("'usage' is not an object")
    prompt = _details(value.get("prompt_tokens_details"))
    completion = _details(value.get("completion_tokens_details"))
    return Usage(
        input_tokens=_count(value.get("prompt_tokens")),
        output_tokens=_count(value.get("completion_tokens")),
        cached_tokens=_count(prompt.get("cached_tokens")),
        cache_write_tokens=_count(prompt.get("cache_write_tokens")),
        reasoning_tokens=_count(completion.get("reasoning_tokens")),
    )


def _details(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _malformed("usage details are not an object")
    return value


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed("a token count is not an integer")
    return value


def _malformed(reason: str) -> MalformedResponse:
    return MalformedResponse(f"invalid chat completion from upstream: {reason}",
                             origin="upstream")


# --- encode (serving clients) ----------------------------------------------------------------

def tool_call_wire(part: ToolCallPart) -> dict[str, Any]:
    """An assistant message's `tool_calls` entry."""
    return {"id": part.id, "type": "function",
            "function": {"name": part.name, "arguments": part.arguments}}


def encode_response(response: ChatResponse, created: int) -> dict[str, Any]:
    """A `chat.completion` object. `created` is used when the response has none."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in response.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(tool_call_wire(part))
        elif isinstance(part, ThinkingPart):
            if part.text:
                thoughts.append(part.text)
        else:
            raise UnsupportedFeature(
                f"A '{part.kind}' part cannot be sent in a chat completion response.")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        # Non-standard, as vLLM/DeepSeek send it; the SDK keeps unknown fields.
        message["reasoning_content"] = "".join(thoughts)
    return {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created or created,
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": FINISH_TO_WIRE[response.finish_reason or "stop"],
        }],
        "usage": encode_usage(response.usage),
    }


# --- decode (calling providers) --------------------------------------------------------------

def decode_response(body: bytes) -> ChatResponse:
    """Parse a provider's completion. Raises `MalformedResponse` for anything else."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _malformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise _malformed("body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _malformed("'choices' is missing or empty")
    choice = choices[0]
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise _malformed("'choices[0].message' is missing")
    message: dict[str, Any] = choice["message"]
    parts = _message_parts(message)
    reason = choice.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        raise _malformed("'finish_reason' is not a string")
    finish, stop_sequence = finish_from_wire(reason or "stop", choice.get("stop_reason"))
    if message.get("refusal"):
        finish = "content_filter"
    elif finish == "stop" and any(isinstance(p, ToolCallPart) for p in parts) and not reason:
        finish = "tool_calls"
    return ChatResponse(
        id=_opt_str(data, "id"),
        model=_opt_str(data, "model"),
        parts=parts,
        finish_reason=finish,
        stop_sequence=stop_sequence,
        usage=decode_usage(data.get("usage")),
        created=_opt_int(data, "created"),
    )


def _message_parts(message: dict[str, Any]) -> list[Part]:
    parts: list[Part] = []
    for key in ("reasoning_content", "reasoning"):
        # Some servers send both with the same text: keep the first non-empty one.
        thought = message.get(key)
        if thought is not None and not isinstance(thought, str):
            raise _malformed(f"'message.{key}' is not a string")
        if thought:
            parts.append(ThinkingPart(thought))
            break
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise _malformed("'message.content' is not a string")
    if content:
        parts.append(TextPart(content))
    refusal = message.get("refusal")
    if refusal is not None and not isinstance(refusal, str):
        raise _malformed("'message.refusal' is not a string")
    if refusal:
        parts.append(TextPart(refusal))
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _malformed("'message.tool_calls' is not an array")
        parts.extend(_tool_call(call) for call in calls)
    return parts


def _tool_call(call: Any) -> ToolCallPart:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise _malformed("a tool call has no 'function' object")
    function = call["function"]
    call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise _malformed("a tool call lacks a string 'id' or 'function.name'")
    if arguments is None:
        arguments = ""
    elif isinstance(arguments, dict):
        # Some local servers (older Ollama) send the arguments object itself.
        arguments = orjson.dumps(arguments).decode()
    elif not isinstance(arguments, str):
        raise _malformed("tool call 'arguments' is not a string")
    return ToolCallPart(call_id, name, arguments)


def _opt_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _malformed(f"'{key}' is not a string")
    return value


def _opt_int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _malformed(f"'{key}' is not a number")
    return int(value)
