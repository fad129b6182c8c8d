"""The bundled catalog loads as package data and overrides apply field by field."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from turnout.pricing.table import Unpriced, bundled_prices
from turnout.providers.catalog import (
    CatalogError,
    ModelFields,
    bundled_catalog,
    lookup,
    parse_catalog,
)
from turnout.providers.types import JSON_SCHEMA, REASONING, TOOLS, VISION, ModelInfo


def test_required_models_are_present() -> None:
    cat = bundled_catalog()
    assert {"gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o",
            "gpt-4o-mini", "o3", "o4-mini"} <= set(cat["openai"])
    assert {"claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"} <= set(cat["anthropic"])
    assert any(m.startswith("claude-3-5-haiku") for m in cat["anthropic"])
    assert {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"} <= set(cat["gemini"])
    assert all("/" in m for m in cat["openrouter"])
    assert "smollm2" in cat["local"]


# Figures from the vendors' model pages (OpenAI, Anthropic, Google AI), not from the yaml.
@pytest.mark.parametrize(("section", "model", "window", "max_out", "price_in", "price_out"), [
    ("openai", "gpt-5", 400_000, 128_000, "1.25", "10"),
    ("openai", "gpt-4o-mini", 128_000, 16_384, "0.15", "0.60"),
    ("openai", "o4-mini", 200_000, 100_000, "1.10", "4.40"),
    ("anthropic", "claude-sonnet-4-5", 200_000, 64_000, "3", "15"),
    ("anthropic", "claude-haiku-4-5", 200_000, 64_000, "1", "5"),
    ("gemini", "gemini-2.5-flash-lite", 1_048_576, 65_536, "0.10", "0.40"),
])
def test_spot_checked_figures(section: str, model: str, window: int, max_out: int,
                              price_in: str, price_out: str) -> None:
    info = bundled_catalog()[section][model]
    assert (info.context_window, info.max_output_tokens) == (window, max_out)
    assert info.price is not None  # joined from the price table
    assert (info.price.input, info.price.output) == (Decimal(price_in), Decimal(price_out))


def test_capabilities() -> None:
    cat = bundled_catalog()
    assert cat["openai"]["o3"].reasoning and not cat["openai"]["gpt-4o"].reasoning
    assert cat["anthropic"]["claude-haiku-4-5"].vision
    assert not cat["local"]["smollm2"].tools and not cat["local"]["smollm2"].vision


def test_every_row_is_complete() -> None:
    for section, models in bundled_catalog().items():
        for model, info in models.items():
            assert info.context_window, (section, model)
            # a price, or a deliberate `unpriced` row in the price table
            assert info.price is not None or isinstance(
                bundled_prices()[section][model], Unpriced), (section, model)


def test_catalog_is_immutable() -> None:
    cat = bundled_catalog()
    with pytest.raises(TypeError):
        cat["openai"]["x"] = ModelInfo()  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cat["openai"]["gpt-4o"].context_window = 1  # type: ignore[misc]


def test_lookup_of_unknown_models_gives_defaults() -> None:
    cat = bundled_catalog()
    assert lookup(cat, "openai", "gpt-99") == ModelInfo()
    assert lookup(cat, None, "gpt-4o") == ModelInfo()
    assert lookup(cat, "openai", "gpt-4o") is cat["openai"]["gpt-4o"]


def test_override_sets_only_given_fields() -> None:
    base = bundled_catalog()["openai"]["gpt-4o"]
    changed = ModelFields.model_validate({"context_window": 1000, "vision": False,
                                          "price": None}).apply(base)
    assert changed.context_window == 1000 and changed.vision is False
    assert changed.price is None and base.price is not None
    assert changed.max_output_tokens == base.max_output_tokens
    untouched = ModelFields.model_validate({"context_window": 1000}).apply(base)
    assert untouched.price == base.price


def test_null_makes_a_capability_unknown() -> None:
    base = ModelInfo(tools=False)
    assert base.lacks == TOOLS
    cleared = ModelFields.model_validate({"tools": None}).apply(base)
    assert cleared.tools is None and cleared.lacks == 0


def test_only_a_declared_false_counts_as_lacking() -> None:
    """An unknown model's capabilities are unknown, not absent: nothing is skipped for it."""
    unknown = lookup(bundled_catalog(), "openai", "gpt-99")
    assert (unknown.tools, unknown.vision, unknown.json_schema, unknown.reasoning) == (
        None, None, None, None)
    assert unknown.lacks == 0
    local = bundled_catalog()["local"]["smollm2"]
    assert local.lacks == TOOLS | VISION | REASONING  # json_schema: true (a grammar)
    assert bundled_catalog()["openai"]["gpt-4.1"].lacks == REASONING
    assert ModelInfo(vision=True, json_schema=False).lacks == JSON_SCHEMA


def test_parse_errors_name_the_row() -> None:
    with pytest.raises(CatalogError, match=r"catalog\.openai\.m\.contxt: Extra inputs"):
        parse_catalog("openai:\n  m: {contxt: 1}\n")
    with pytest.raises(CatalogError, match=r"catalog\.openai: expected a mapping"):
        parse_catalog("openai: [a]\n")
    parsed = parse_catalog("openai:\n  m: {context_window: 10, tools: false}\n")
    assert parsed["openai"]["m"] == ModelInfo(context_window=10, tools=False)
