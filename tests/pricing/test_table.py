"""The bundled price table validates, covers the catalog, and config prices are strict."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from importlib import resources

import pytest
import yaml
from pydantic import ValidationError

from turnout.pricing.table import (
    BundledPrice,
    Price,
    PriceTableError,
    Unpriced,
    bundled_prices,
    lookup_price,
    parse_prices,
)
from turnout.providers.catalog import bundled_catalog

RATE_FIELDS = ("input", "output", "cached_input", "cache_write", "cache_write_1h", "reasoning")


def test_every_catalog_model_has_a_row_and_every_row_a_catalog_model() -> None:
    prices, catalog = bundled_prices(), bundled_catalog()
    assert set(prices) == set(catalog)
    for section, models in catalog.items():
        assert set(prices[section]) == set(models), section


def test_every_row_says_where_and_when() -> None:
    for section, rows in bundled_prices().items():
        for model, row in rows.items():
            if isinstance(row, Unpriced):
                assert row.unpriced.strip(), (section, model)
                continue
            assert isinstance(row, BundledPrice)
            assert row.source.startswith(("https://", "turnout:")), (section, model)
            assert date(2024, 1, 1) <= row.effective <= date(2026, 12, 31), (section, model)


def test_every_price_in_the_file_is_a_quoted_string() -> None:
    raw = yaml.safe_load(resources.files("turnout.pricing").joinpath("prices.yaml").read_text())
    for rows in raw.values():
        for fields in rows.values():
            tier = fields.get("long_context", {})
            for name in RATE_FIELDS:
                for value in (fields.get(name), tier.get(name)):
                    assert value is None or isinstance(value, str), (fields, name)


def test_local_models_cost_nothing() -> None:
    price = lookup_price(bundled_prices(), "local", "smollm2")
    assert price is not None and (price.input, price.output) == (0, 0)


def test_anthropic_cache_rates_follow_anthropics_multipliers() -> None:
    # 5-minute writes 1.25x, 1-hour writes 2x, reads 0.1x the input rate.
    for model, row in bundled_prices()["anthropic"].items():
        assert isinstance(row, Price), model
        assert row.cache_write == row.input * Decimal("1.25"), model
        assert row.cache_write_1h == row.input * 2, model
        assert row.cached_input == row.input * Decimal("0.1"), model


def test_openai_and_gemini_have_no_cache_write_surcharge() -> None:
    for section in ("openai", "gemini"):
        for model, row in bundled_prices()[section].items():
            assert isinstance(row, Price)
            assert row.cache_write is None, model
            assert row.rates(0).cache_write == row.input, model
            assert row.cached_input is not None and row.cached_input < row.input, model


# Hand-copied from the vendors' pricing pages (USD per Mtok: input, cached, output).
@pytest.mark.parametrize(("section", "model", "figures"), [
    ("openai", "gpt-5", ("1.25", "0.125", "10")),
    ("openai", "gpt-4.1-mini", ("0.40", "0.10", "1.60")),
    ("openai", "o4-mini", ("1.10", "0.275", "4.40")),
    ("anthropic", "claude-opus-4-5", ("5", "0.50", "25")),
    ("anthropic", "claude-3-5-haiku-latest", ("0.80", "0.08", "4")),
    ("gemini", "gemini-2.5-flash", ("0.30", "0.03", "2.50")),
])
def test_spot_checked_rows(section: str, model: str, figures: tuple[str, str, str]) -> None:
    price = lookup_price(bundled_prices(), section, model)
    assert price is not None
    assert (price.input, price.cached_input, price.output) == tuple(map(Decimal, figures))


def test_long_context_tier_replaces_rates_above_its_threshold() -> None:
    price = lookup_price(bundled_prices(), "gemini", "gemini-2.5-pro")
    assert price is not None
    short, long = price.rates(200_000), price.rates(200_001)
    assert (short.input, short.cached_input, short.output) == (
        Decimal("1.25"), Decimal("0.125"), Decimal("10.00"))
    assert (long.input, long.cached_input, long.output) == (
        Decimal("2.50"), Decimal("0.25"), Decimal("15.00"))
    assert long.reasoning == long.output  # thinking bills as output in either tier


def test_a_zero_tier_rate_is_a_price_not_a_gap() -> None:
    price = Price.model_validate({"input": "1", "output": "2",
                                  "long_context": {"above_tokens": 10, "input": "0"}})
    assert price.rates(11).input == 0 and price.rates(11).output == 2


@pytest.mark.parametrize(("fields", "message"), [
    ({"input": 0.1, "output": "1"}, "quoted decimal string"),
    ({"input": True, "output": "1"}, "quoted decimal string"),
    ({"input": "-1", "output": "1"}, ">= 0"),
    ({"input": "NaN", "output": "1"}, "finite"),
    ({"input": "abc", "output": "1"}, "not a decimal"),
    ({"input": "1"}, "output"),
    ({"input": "1", "output": "1", "cache_reads": "1"}, "Extra inputs"),
    ({"input": "1", "output": "1", "long_context": {"input": "2"}}, "above_tokens"),
])
def test_config_prices_are_strict(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Price.model_validate(fields)


def test_config_prices_default_to_config_source_and_are_frozen() -> None:
    price = Price.model_validate({"input": 3, "output": "15.0"})
    assert (price.input, price.output, price.source, price.effective) == (3, 15, "config", None)
    with pytest.raises(ValidationError):
        price.input = Decimal(1)  # type: ignore[misc]


def test_parse_errors_name_the_row() -> None:
    with pytest.raises(PriceTableError, match=r"prices\.openai\.m\.effective: Field required"):
        parse_prices("openai:\n  m: {input: '1', output: '1', source: x}\n")
    with pytest.raises(PriceTableError, match=r"prices\.openai\.m\.input: Value error"):
        parse_prices("openai:\n  m: {input: 1.5, output: '1', source: x, effective: 2025-01-01}\n")
    with pytest.raises(PriceTableError, match=r"prices\.openai: expected a mapping"):
        parse_prices("openai: [a]\n")
    with pytest.raises(PriceTableError, match=r"prices\.openai\.m\.unpriced"):
        parse_prices("openai:\n  m: {unpriced: ''}\n")


def test_unpriced_rows_look_up_as_none() -> None:
    table = parse_prices("openai:\n  m: {unpriced: price depends on the host}\n"
                         "  n: {input: '1', output: '2', source: x, effective: 2025-01-01}\n")
    assert isinstance(table["openai"]["m"], Unpriced)
    assert lookup_price(table, "openai", "m") is None
    assert lookup_price(table, "openai", "unknown") is None
    assert lookup_price(table, None, "n") is None
    n = lookup_price(table, "openai", "n")
    assert n is not None and n.output == 2


def test_table_is_immutable() -> None:
    table = bundled_prices()
    with pytest.raises(TypeError):
        table["openai"]["x"] = Unpriced(unpriced="x")  # type: ignore[index]
