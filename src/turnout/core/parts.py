"""Typed message parts: the building blocks of every message and response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from turnout.core.json_data import json_fault


@dataclass(slots=True)
class TextPart:
    """Plain text."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(slots=True)
class ImagePart:
    """An image given by URL: an `https://` URL or a `data:<media type>;base64,...` URL."""

    url: str
    detail: str | None = None
    kind: Literal["image"] = "image"

    @property
    def is_data_url(self) -> bool:
        return self.url.startswith("data:")

    def data_url_parts(self) -> tuple[str, str]:
        """Return (media_type, base64 data) of a data URL; raise ValueError otherwise."""
        if not self.is_data_url:
            raise ValueError("not a data URL")
        header, _, data = self.url.partition(",")
        media_type = header[5:].split(";", 1)[0]
        if not header.endswith(";base64") or not media_type or not data:
            raise ValueError("image data URL must be data:<media type>;base64,<data>")
        return media_type, data


@dataclass(slots=True)
class ToolCallPart:
    """A call the assistant asks the client to make.

    `arguments` is the JSON text of the arguments object, exactly as produced (OpenAI sends a
    string and streams it in pieces; Anthropic and Gemini send an object, which is serialised).
    """

    id: str
    name: str
    arguments: str = ""
    kind: Literal["tool_call"] = "tool_call"

    def arguments_object(self) -> dict[str, Any]:
        """Parse `arguments` into an object; empty text is `{}`. Raises ValueError if invalid."""
        if not self.arguments.strip():
            return {}
        try:
            value = orjson.loads(self.arguments)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"tool call {self.name!r} arguments are not valid JSON") from exc
        if not isinstance(value, dict):
            raise ValueError(f"tool call {self.name!r} arguments must be a JSON object")
        # Parsed arguments go into another dialect's body: they must encode again.
        fault = json_fault(value)
        if fault is not None:
            raise ValueError(f"tool call {self.name!r} arguments: {fault[1]}")
        return value


@dataclass(slots=True)
class ToolResultPart:
    """The result of a tool call, sent back by the client.

    `name` is the called tool's name when known (Gemini requires it; dialects that lack it
    on the wire recover it from the matching `ToolCallPart` earlier in the conversation).
    """

    tool_call_id: str
    content: list[TextPart | ImagePart] = field(default_factory=list)
    is_error: bool = False
    name: str | None = None
    kind: Literal["tool_result"] = "tool_result"

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(slots=True)
class ThinkingPart:
    """Model reasoning. `signature` (Anthropic) must round-trip unchanged to the same provider;
    `redacted` holds opaque encrypted reasoning when the provider redacted it."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    kind: Literal["thinking"] = "thinking"


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart
"""Any message part."""
