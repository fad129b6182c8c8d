"""The canonical chat request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from turnout.core.parts import Part, TextPart, ToolCallPart

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class Message:
    """One conversation turn.

    Roles: `system` (instructions; OpenAI `developer` too), `user`, `assistant` (may hold
    tool calls and thinking), `tool` (holds only `ToolResultPart`s). Dialects whose wire format
    puts tool results inside a user turn (Anthropic, Gemini) split and merge at their edge.
    """

    role: Role
    parts: list[Part]
    name: str | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


@dataclass(slots=True)
class ToolDefinition:
    """A tool, defined once and provider-agnostic. `parameters` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


@dataclass(slots=True)
class ToolChoice:
    """How the model may use tools: `auto`, `none`, `required` (any tool) or `tool` (`name`)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


@dataclass(slots=True)
class ResponseFormat:
    """Structured output: `json_object` (any JSON) or `json_schema` (`schema`, named)."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class ThinkingConfig:
    """Extended reasoning: a token budget (Anthropic, Gemini) or an effort level (OpenAI)."""

    enabled: bool = True
    budget_tokens: int | None = None
    effort: Literal["minimal", "low", "medium", "high"] | None = None


@dataclass(slots=True)
class ChatRequest:
    """A chat request in the canonical model, independent of any wire format."""

    model: str
    messages: list[Message]
    tools: list[ToolDefinition] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    user: str | None = None
    stream: bool = False
    include_usage: bool = False
    """OpenAI `stream_options.include_usage`: send a final usage chunk."""
    thinking: ThinkingConfig | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def system_text(self) -> str:
        """All system instructions joined by blank lines, in order."""
        return "\n\n".join(m.text() for m in self.messages if m.role == "system")
