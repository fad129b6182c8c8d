"""Prompt and output counts of canonical requests, exact for OpenAI, scaled for others."""

from __future__ import annotations

import base64
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest, Message, ToolDefinition
from turnout.tokens.count import (
    ANTHROPIC_TOOL_PROMPT,
    FAMILY_FACTORS,
    TOOL_OVERHEAD,
    TOOLS_OVERHEAD,
    counter_for,
    family_for,
)


def user(text: str) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", [TextPart(text)])])


def test_openai_prompt_by_hand() -> None:
    # "hello world" is 2 o200k tokens and "user" 1: 3 to prime the reply, 3 to frame the
    # message, 1 for the role, 2 for the text (OpenAI's cookbook formula).
    count = counter_for("openai_chat", "gpt-4o").prompt(user("hello world"))
    assert (count.tokens, count.exact) == (9, True)


def test_a_name_and_a_second_message() -> None:
    request = ChatRequest(model="m", messages=[
        Message("system", [TextPart("hello world")]),
        Message("user", [TextPart("hello world")], name="world")])
    # 3 + (3 + 1 + 2) + (3 + 1 + 2 + 1 for a name + 1 for "world")
    assert counter_for("openai_chat", "gpt-5").prompt(request).tokens == 17


def test_estimates_scale_the_o200k_count() -> None:
    request = user("hello world")
    anthropic = counter_for("anthropic_messages", "claude-sonnet-4-5").prompt(request)
    gemini = counter_for("gemini", "gemini-2.5-pro").prompt(request)
    assert (anthropic.tokens, anthropic.exact) == (12, False)  # ceil(9 * 5/4)
    assert (gemini.tokens, gemini.exact) == (10, False)  # ceil(9 * 11/10)


def test_cl100k_models_use_cl100k() -> None:
    counter = counter_for("openai_chat", "gpt-4")
    assert counter.encoding.name == "cl100k_base"
    assert counter.text("tiktoken is great!") == 6


def test_tools_add_their_schema_and_framing() -> None:
    tool = ToolDefinition("get_weather", "Weather now", {"type": "object", "properties": {}})
    bare = user("hi")
    with_tool = ChatRequest(model="m", messages=bare.messages, tools=[tool])
    openai = counter_for("openai_chat", "gpt-4o")
    schema = '{"properties":{},"type":"object"}'
    added = (TOOLS_OVERHEAD + TOOL_OVERHEAD + openai.text("get_weather")
             + openai.text("Weather now") + openai.text(schema))
    assert openai.prompt(with_tool).tokens == openai.prompt(bare).tokens + added
    assert not openai.prompt(with_tool).exact  # tool framing is approximate
    claude = counter_for("anthropic_messages", "claude-haiku-4-5")
    raw = openai.prompt(with_tool).tokens
    assert claude.prompt(with_tool).tokens == math.ceil(raw * 5 / 4) + ANTHROPIC_TOOL_PROMPT


def _png_part(width: int, height: int) -> ImagePart:
    header = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
              + struct.pack(">II", width, height) + bytes(9))
    return ImagePart("data:image/png;base64," + base64.b64encode(header).decode())


def test_images_count_by_formula_unscaled() -> None:
    image = _png_part(1024, 1024)
    request = ChatRequest(model="m", messages=[Message("user", [image])])
    result = ChatRequest(model="m", messages=[Message("tool", [
        ToolResultPart("call_1", [TextPart("hello world"), image])])])
    openai = counter_for("openai_chat", "gpt-4o")
    claude = counter_for("anthropic_messages", "claude-haiku-4-5")
    assert openai.prompt(request).tokens == 7 + 765  # framing (3 + 3 + "user") + image
    # Framing is scaled, the image formula is Anthropic's own and is not.
    assert claude.prompt(request).tokens == math.ceil(7 * 5 / 4) + 1399
    # tool result: 3 + 3 + "tool" (1) + "hello world" (2) + image
    assert openai.prompt(result).tokens == 9 + 765


def test_output_and_reasoning() -> None:
    parts = [ThinkingPart("hello world"), TextPart("hello world"),
             ToolCallPart("c1", "get", '{"a":1}')]
    openai = counter_for("openai_chat", "o3")
    expected = 2 + 2 + openai.text("get") + openai.text('{"a":1}')
    assert openai.output(parts).tokens == expected
    assert openai.reasoning(parts).tokens == 2
    assert openai.output([]).tokens == 0


@pytest.mark.parametrize(("dialect", "model", "family"), [
    ("openai_chat", "gpt-5", "openai"),
    ("openai_chat", "openai/gpt-4o-mini", "openai"),
    ("openai_chat", "anthropic/claude-sonnet-4.5", "anthropic"),
    ("openai_chat", "google/gemini-2.5-flash", "gemini"),
    ("openai_chat", "meta-llama/llama-3.3-70b-instruct", "other"),
    ("openai_chat", "smollm2", "other"),
    ("openai_chat", "Qwen/Qwen2.5-7B-Instruct", "other"),
    ("anthropic_messages", "claude-opus-4-5", "anthropic"),
    ("gemini", "gemini-2.0-flash", "gemini"),
])
def test_family_for(dialect: str, model: str, family: str) -> None:
    assert family_for(dialect, model) == family
    assert counter_for(dialect, model).family == family


texts = st.text(max_size=200)


@settings(max_examples=60, deadline=None)
@given(st.lists(texts, min_size=1, max_size=5), texts)
def test_more_text_never_counts_fewer_tokens(messages: list[str], extra: str) -> None:
    request = ChatRequest(model="m", messages=[Message("user", [TextPart(t)]) for t in messages])
    longer = ChatRequest(model="m", messages=[*request.messages,
                                              Message("user", [TextPart(extra)])])
    for dialect, model in (("openai_chat", "gpt-4o"), ("anthropic_messages", "claude"),
                           ("gemini", "gemini-2.5-pro")):
        counter = counter_for(dialect, model)
        assert counter.prompt(longer).tokens > counter.prompt(request).tokens


@settings(max_examples=60, deadline=None)
@given(texts)
def test_estimates_never_count_fewer_than_o200k(text: str) -> None:
    exact = counter_for("openai_chat", "gpt-4o").text(text)
    for dialect in ("anthropic_messages", "gemini"):
        counter = counter_for(dialect, "x")
        assert counter.text(text) == math.ceil(exact * FAMILY_FACTORS[counter.family])
        assert counter.text(text) >= exact


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.text(max_size=200), min_size=1, max_size=4),
       family=st.sampled_from([("openai_chat", "gpt-4o"), ("openai_chat", "gpt-4"),
                               ("anthropic_messages", "claude-sonnet-4-5"),
                               ("gemini", "gemini-2.5-flash")]),
       with_tool=st.booleans())
def test_the_untokenized_prompt_bound_is_never_below_the_count(
        texts: list[str], family: tuple[str, str], with_tool: bool) -> None:
    """The ledger charges an attempt that a crash interrupted at this bound: it may be
    loose, never low (any text, any family, tool calls and definitions included)."""
    parts: list[TextPart | ToolCallPart] = [TextPart(t) for t in texts]
    tools = []
    if with_tool:
        parts.append(ToolCallPart(id="c1", name="lookup", arguments='{"q": "' + texts[0] + '"}'))
        tools = [ToolDefinition(name="lookup", description=texts[-1],
                                parameters={"type": "object"})]
    request = ChatRequest(model="m", messages=[Message("user", list(parts))], tools=tools)
    counter = counter_for(*family)
    assert counter.prompt_bound(request) >= counter.prompt(request).tokens
