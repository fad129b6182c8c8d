"""The canonical chat response and token usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from turnout.core.parts import Part, TextPart, ThinkingPart, ToolCallPart

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "stop_sequence", "error"]
"""Why generation ended. `stop_sequence` is a `stop` with a matched stop sequence."""


@dataclass(slots=True)
class Usage:
    """Token counts. `input_tokens` counts every prompt token, cached ones included;
    `cached_tokens` (cache reads) and `cache_write_tokens` are subsets of it.
    `reasoning_tokens` is a subset of `output_tokens`."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def merge(self, other: Usage) -> None:
        """Take every non-zero figure of `other` (streams report usage cumulatively)."""
        for name in ("input_tokens", "output_tokens", "cached_tokens",
                     "cache_write_tokens", "reasoning_tokens"):
            value = getattr(other, name)
            if value:
                setattr(self, name, value)


@dataclass(slots=True)
class ChatResponse:
    """A complete assistant answer. A folded stream yields exactly this object too."""

    id: str
    model: str
    parts: list[Part] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    created: int = 0
    provider_details: dict[str, Any] = field(default_factory=dict)
    """Vendor extras, namespaced by provider; never content or ids."""

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]

    def thinking(self) -> list[ThinkingPart]:
        return [p for p in self.parts if isinstance(p, ThinkingPart)]
