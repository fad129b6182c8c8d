"""Prices per model: the bundled table (`prices.yaml`) and the price config may set.

Prices are USD per million tokens held as exact `Decimal`s. They are written as quoted
strings (or integers): a YAML float such as `0.1` is already inexact by the time it is
parsed, so floats are refused rather than silently rounded.
"""

from __future__ import annotations

import decimal
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from types import MappingProxyType
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError


def _exact_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("write a price as a quoted decimal string such as '1.25' "
                         "(floats are inexact)")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError("a price must be a finite number >= 0")
    return number


PerMTok = Annotated[Decimal, BeforeValidator(_exact_decimal)]
"""USD per million tokens, exact."""

_STRICT = ConfigDict(extra="forbid", frozen=True)
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation])


class LongContextPrice(BaseModel):
    """Rates that replace the standard ones for the whole request when its prompt is longer
    than `above_tokens` (Gemini 2.5 Pro above 200k tokens, for example). A rate left out
    here keeps the standard rate."""

    model_config = _STRICT

    above_tokens: int = Field(gt=0)
    """Prompt size (every input token, cached ones included) above which these apply."""
    input: PerMTok | None = None
    output: PerMTok | None = None
    cached_input: PerMTok | None = None
    cache_write: PerMTok | None = None
    cache_write_1h: PerMTok | None = None
    reasoning: PerMTok | None = None


@dataclass(frozen=True, slots=True)
class Rates:
    """The five rates that apply to one request, every one resolved (USD per Mtok)."""

    input: Decimal
    """Uncached prompt tokens."""
    cached_input: Decimal
    """Prompt tokens read from the provider's cache."""
    cache_write: Decimal
    """Prompt tokens written to the cache (Anthropic's default 5-minute lifetime)."""
    output: Decimal
    """Visible output tokens."""
    reasoning: Decimal
    """Reasoning (thinking) tokens, a share of output."""
    numerators: tuple[int, int, int, int, int] = field(init=False, repr=False, compare=False)
    """The five rates (input, cached input, cache write, output, reasoning) as exact integer
    fractions over `denominator`. A rate in USD per million tokens is a rate in micro-USD
    per token, so `sum(tokens * numerator) / denominator` is a cost in micro-USD, exactly,
    in integer arithmetic."""
    denominator: int = field(init=False, repr=False, compare=False)
    """The smallest common denominator of the five rates."""
    per_token: tuple[Decimal, Decimal, Decimal, Decimal, Decimal] = field(
        init=False, repr=False, compare=False)
    """The five rates in USD per token (each rate scaled by 10**-6, exactly)."""

    def __post_init__(self) -> None:
        rates = (self.input, self.cached_input, self.cache_write, self.output, self.reasoning)
        exact = [Fraction(rate) for rate in rates]
        denominator = math.lcm(*(f.denominator for f in exact))
        numerators = tuple(f.numerator * (denominator // f.denominator) for f in exact)
        per_token = tuple(Decimal(rate).scaleb(-6, _EXACT) for rate in rates)
        object.__setattr__(self, "numerators", numerators)
        object.__setattr__(self, "denominator", denominator)
        object.__setattr__(self, "per_token", per_token)


class Price(BaseModel):
    """One model's list price. Optional rates default to the rate they are billed at when
    the provider has no separate price: cache reads and writes at the input rate, reasoning
    at the output rate."""

    model_config = _STRICT

    input: PerMTok
    output: PerMTok
    cached_input: PerMTok | None = None
    """Cache reads (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`, Gemini
    `cachedContentTokenCount`)."""
    cache_write: PerMTok | None = None
    """Cache writes with the default lifetime (Anthropic: 5 minutes, 1.25x input)."""
    cache_write_1h: PerMTok | None = None
    """Anthropic's 1-hour cache writes (2x input). Recorded for completeness: the canonical
    request cannot ask for the 1-hour lifetime, so `cost` bills writes at `cache_write`."""
    reasoning: PerMTok | None = None
    """Only where reasoning tokens are priced apart from other output (none today)."""
    long_context: LongContextPrice | None = None
    source: str = "config"
    """Where the figures come from: a URL, or `config` for an operator's override."""
    effective: date | None = None
    """The day these prices took effect (or were last confirmed)."""
    note: str | None = None

    def rates(self, prompt_tokens: int) -> Rates:
        """The rates for a request whose prompt has `prompt_tokens` tokens."""
        standard, above, long = self._tiers
        return long if long is not None and prompt_tokens > above else standard

    @functools.cached_property
    def _tiers(self) -> tuple[Rates, int, Rates | None]:
        """The standard rates, the long-context threshold and rates (if any), resolved once
        per price (a price is immutable; `model_copy` drops this cache)."""
        standard = _resolve(self.input, self.output, self.cached_input, self.cache_write,
                            self.reasoning)
        tier = self.long_context
        if tier is None:
            return standard, 0, None
        # `is None`, not `or`: a tier rate of 0 is a price, not an absent one.
        return standard, tier.above_tokens, _resolve(
            _pick(tier.input, self.input), _pick(tier.output, self.output),
            _pick(tier.cached_input, self.cached_input),
            _pick(tier.cache_write, self.cache_write), _pick(tier.reasoning, self.reasoning))

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_tiers", None)  # resolved again from the copy's own fields
        return copied


def _pick(tier: Decimal | None, standard: Decimal | None) -> Decimal | None:
    return standard if tier is None else tier


def _resolve(input_rate: Decimal | None, output: Decimal | None, cached: Decimal | None,
             write: Decimal | None, reasoning: Decimal | None) -> Rates:
    assert input_rate is not None and output is not None  # required on every Price
    return Rates(
        input=input_rate,
        cached_input=input_rate if cached is None else cached,
        cache_write=input_rate if write is None else write,
        output=output,
        reasoning=output if reasoning is None else reasoning)


class BundledPrice(Price):
    """A row of the bundled table: it must say where its figures come from and when."""

    source: str = Field(min_length=1)
    effective: date


class Unpriced(BaseModel):
    """A model deliberately left without a price (its cost is unknown, not zero)."""

    model_config = _STRICT

    unpriced: str = Field(min_length=1)
    """Why: the price depends on the host, the model is not billed per token, ..."""


PriceRow = BundledPrice | Unpriced
PriceTable = Mapping[str, Mapping[str, PriceRow]]
"""Catalog section (provider kind) -> provider model id -> price or `Unpriced`."""


class PriceTableError(ValueError):
    """The price table YAML is malformed (a packaging bug, or a bad custom table)."""


def parse_prices(text: str) -> PriceTable:
    """Validate price-table YAML into immutable rows."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise PriceTableError("prices: expected a mapping of catalog section -> models")
    sections: dict[str, Mapping[str, PriceRow]] = {}
    for section, models in data.items():
        if not isinstance(models, dict):
            raise PriceTableError(f"prices.{section}: expected a mapping of model id -> price")
        rows: dict[str, PriceRow] = {}
        for model, fields in models.items():
            rows[str(model)] = _row(f"prices.{section}.{model}", fields)
        sections[str(section)] = MappingProxyType(rows)
    return MappingProxyType(sections)


def _row(where: str, fields: Any) -> PriceRow:
    kind: type[BundledPrice] | type[Unpriced] = (
        Unpriced if isinstance(fields, dict) and "unpriced" in fields else BundledPrice)
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PriceTableError(f"{where}{'.' + loc if loc else ''}: {first['msg']}") from None


@functools.lru_cache(maxsize=1)
def bundled_prices() -> PriceTable:
    """The price table shipped in the package (parsed once; the result is immutable)."""
    text = resources.files("turnout.pricing").joinpath("prices.yaml").read_text("utf-8")
    return parse_prices(text)


def lookup_price(table: PriceTable, section: str | None, model: str) -> Price | None:
    """The price of `model`, or None when it is unpriced or the table does not list it."""
    if section is None:
        return None
    row = table.get(section, {}).get(model)
    return row if isinstance(row, Price) else None
