"""Offline prompt and output token counts for budget reservations and usage estimates.

OpenAI models are counted exactly with their own tiktoken encoding. Other providers do not
publish their tokenizers (Anthropic) or publish them only through a network API (Gemini's
`countTokens`), so their counts are the o200k_base count scaled by a factor chosen to
over- rather than under-estimate (see `FAMILY_FACTORS`); such counts say `exact=False`.

This is the exact-ish counter for reservations. The engine's context-window check keeps
its own cheap character estimate (`turnout.engine.tokens`) on the hot path: counting a
2 KB prompt here takes about 0.15 ms and a 200 KB one about 10 ms (the estimate: ~1 us).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import get_args

import orjson
import tiktoken

from turnout.core.parts import (
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from turnout.core.request import ChatRequest, Role, ToolDefinition
from turnout.tokens.encodings import encoding_name_for_model, get_encoding
from turnout.tokens.images import ImageFamily, image_tokens

Family = ImageFamily
"""Whose tokenizer a model uses: `openai`, `anthropic`, `gemini`, or `other` (open-weight
models behind OpenAI-compatible servers, whose tokenizers vary)."""

FAMILY_FACTORS: Mapping[Family, Fraction] = MappingProxyType({
    "openai": Fraction(1),
    # Claude's tokenizer is not public. Published comparisons put Claude 3/4 at roughly
    # 1.15-1.3x GPT-4o's token count for the same English text and more for code, and
    # Anthropic says its newest tokenizer uses up to 1.35x as many tokens as the one before.
    "anthropic": Fraction(5, 4),
    # Gemini's 256k-entry SentencePiece vocabulary is about as dense as o200k_base for
    # English; 10% covers other languages and code.
    "gemini": Fraction(11, 10),
    # Llama 3 (128k), Qwen (151k) and Mistral (tekken) vocabularies are a little less dense.
    "other": Fraction(11, 10),
})
"""Multiplier applied to o200k_base counts for each family's estimate."""

MESSAGE_OVERHEAD = 3
"""Tokens framing each message (OpenAI's chat format: role and separators)."""
NAME_OVERHEAD = 1
"""A message's `name` field."""
REPLY_PRIMING = 3
"""Tokens that start the assistant's reply."""
TOOL_OVERHEAD = 7
"""Tokens framing each tool definition, besides its name, description and schema text."""
TOOLS_OVERHEAD = 12
"""Tokens framing the tool list as a whole."""
ANTHROPIC_TOOL_PROMPT = 346
"""The tool-use system prompt Anthropic adds when tools are given (Claude 4 models, tool
choice `auto`/`none`; `any`/`tool` add 313)."""


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A count and whether it is exact (the model's own tokenizer) or an estimate."""

    tokens: int
    exact: bool


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """Counts tokens as one model's provider would, offline. Immutable and thread-safe."""

    family: Family
    encoding: tiktoken.Encoding
    factor: Fraction
    """1 for an exact count; the family's estimate factor otherwise."""
    _exact: bool = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)
    _roles: Mapping[str, int] = field(init=False, repr=False, compare=False)
    """Raw tokens of each message role (counted once: every message has one)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_exact", self.factor == 1)
        object.__setattr__(self, "_hash", hash((self.family, self.encoding, self.factor)))
        object.__setattr__(self, "_roles", MappingProxyType({
            role: len(self.encoding.encode_ordinary(role)) for role in get_args(Role)}))

    def __hash__(self) -> int:
        # The hash `dataclass` would generate from the compared fields, computed once
        # (counters are dictionary keys per request; hashing a Fraction is slow).
        return self._hash

    @property
    def exact(self) -> bool:
        """True when this is the model's own tokenizer, not a scaled estimate."""
        return self._exact

    def text(self, text: str) -> int:
        """Tokens of plain text (special-token markers in it count as ordinary text)."""
        return self._scaled(self._raw(text))

    def prompt(self, request: ChatRequest) -> TokenCount:
        """Prompt tokens of `request`: messages, tool definitions and images."""
        return self._prompt(request, self._raw)

    def prompt_bound(self, request: ChatRequest) -> int:
        """At least `prompt(request).tokens`, without tokenizing: each text counted as its
        UTF-8 bytes (a BPE token is one byte or more), for worst cases that must never be
        too low but need not be tight."""
        return self._prompt(request, _utf8_bytes).tokens

    def _prompt(self, request: ChatRequest, raw_of: Callable[[str], int]) -> TokenCount:
        raw = REPLY_PRIMING
        images = 0
        roles = self._roles
        for message in request.messages:
            role = roles.get(message.role)
            raw += MESSAGE_OVERHEAD + (raw_of(message.role) if role is None else role)
            if message.name:
                raw += NAME_OVERHEAD + raw_of(message.name)
            part_raw, part_images = self._parts(message.parts, raw_of)
            raw += part_raw
            images += part_images
        raw += self._tools(request.tools, raw_of)
        extra = ANTHROPIC_TOOL_PROMPT if request.tools and self.family == "anthropic" else 0
        # Tool framing and image formulas are approximations even for an exact tokenizer.
        exact = self._exact and not request.tools and not images
        return TokenCount(self._scaled(raw) + images + extra, exact)

    def output(self, parts: Iterable[Part]) -> TokenCount:
        """Output tokens of generated parts (text, tool calls, thinking)."""
        raw, _ = self._parts(parts)
        return TokenCount(self._scaled(raw), self._exact)

    def reasoning(self, parts: Iterable[Part]) -> TokenCount:
        """The thinking share of `output(parts)`."""
        raw = sum(self._raw(p.text) for p in parts if isinstance(p, ThinkingPart))
        return TokenCount(self._scaled(raw), self._exact)

    def _parts(self, parts: Iterable[Part],
               raw_of: Callable[[str], int] | None = None) -> tuple[int, int]:
        count = raw_of or self._raw
        raw = images = 0
        for part in parts:
            if isinstance(part, TextPart | ThinkingPart):
                raw += count(part.text)
            elif isinstance(part, ToolCallPart):
                raw += count(part.name) + count(part.arguments)
            elif isinstance(part, ToolResultPart):
                for item in part.content:
                    if isinstance(item, TextPart):
                        raw += count(item.text)
                    else:
                        images += image_tokens(item, self.family)
            elif isinstance(part, ImagePart):
                images += image_tokens(part, self.family)
        return raw, images

    def _tools(self, tools: list[ToolDefinition], raw_of: Callable[[str], int]) -> int:
        if not tools:
            return 0
        raw = TOOLS_OVERHEAD
        for tool in tools:
            schema = orjson.dumps(tool.parameters, option=orjson.OPT_SORT_KEYS).decode()
            raw += (TOOL_OVERHEAD + raw_of(tool.name) + raw_of(tool.description or "")
                    + raw_of(schema))
        return raw

    def _raw(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text)) if text else 0

    def _scaled(self, raw: int) -> int:
        return raw if self._exact else math.ceil(raw * self.factor)


def _utf8_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def family_for(dialect: str, model: str) -> Family:
    """The tokenizer family of `model` as served through `dialect`. OpenRouter-style ids
    (`vendor/model`) name their vendor; an OpenAI-compatible server with a model tiktoken
    does not know is `other`."""
    if dialect == "anthropic_messages":
        return "anthropic"
    if dialect == "gemini":
        return "gemini"
    vendor, _, name = model.rpartition("/")
    if vendor == "anthropic":
        return "anthropic"
    if vendor == "google":
        return "gemini"
    if vendor in ("", "openai") and encoding_name_for_model(name) is not None:
        return "openai"
    return "other"


@functools.lru_cache(maxsize=1024)
def counter_for(dialect: str, model: str) -> TokenCounter:
    """The counter for `model` served through `dialect`: exact for OpenAI models tiktoken
    knows, o200k_base scaled by the family factor for everything else. Cached: a pure
    function of its arguments, called per request by the budget stages."""
    family = family_for(dialect, model)
    if family == "openai":
        name = encoding_name_for_model(model.rpartition("/")[2])
        assert name is not None  # family_for checked it
        return TokenCounter(family, get_encoding(name), Fraction(1))
    return TokenCounter(family, get_encoding("o200k_base"), FAMILY_FACTORS[family])
