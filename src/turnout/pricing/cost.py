"""The cost of one attempt, from canonical usage and a price, in exact decimal arithmetic.

Canonical usage already hides each provider's accounting (the dialects normalise it):
`input_tokens` counts every prompt token with cache reads and writes inside it, and
`reasoning_tokens` is a share of `output_tokens`. So the billed split is the same for every
provider: uncached input = input - cache reads - cache writes; visible output = output -
reasoning.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from turnout.core.response import Usage
from turnout.pricing.table import Price

_EXACT = decimal.Context(
    prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
"""Arithmetic that raises rather than rounds: token counts times rates with a few decimal
places never come near 60 digits, so a trap here would mean a bug, not a big bill."""

_ZERO = Decimal(0)
_MILLION = 6


@dataclass(frozen=True, slots=True)
class Cost:
    """USD spent by one attempt (or a sum of attempts), split by what was billed."""

    input: Decimal = _ZERO
    """Uncached prompt tokens."""
    cached_input: Decimal = _ZERO
    """Prompt tokens read from the cache."""
    cache_write: Decimal = _ZERO
    """Prompt tokens written to the cache."""
    output: Decimal = _ZERO
    """Visible output tokens (text and tool calls)."""
    reasoning: Decimal = _ZERO
    """Reasoning tokens."""
    estimated: bool = False
    """Some of the usage behind this cost was estimated (a stream cut before its usage
    arrived, an upstream that reports none), not reported by the provider."""

    @property
    def total(self) -> Decimal:
        """The whole cost in USD, exact."""
        parts = (self.input, self.cached_input, self.cache_write, self.output, self.reasoning)
        total = _ZERO
        for part in parts:
            total = _EXACT.add(total, part)
        return total

    def micro_usd(self) -> int:
        """The total in millionths of a dollar, rounded up (a ledger never under-charges)."""
        return int(self.total.scaleb(_MILLION, _EXACT).to_integral_value(decimal.ROUND_CEILING))

    def __add__(self, other: Cost) -> Cost:
        """Costs of several attempts add up field by field; estimated if any one was."""
        return Cost(
            input=_EXACT.add(self.input, other.input),
            cached_input=_EXACT.add(self.cached_input, other.cached_input),
            cache_write=_EXACT.add(self.cache_write, other.cache_write),
            output=_EXACT.add(self.output, other.output),
            reasoning=_EXACT.add(self.reasoning, other.reasoning),
            estimated=self.estimated or other.estimated)


ZERO_COST = Cost()


@dataclass(frozen=True, slots=True)
class BilledTokens:
    """Usage split into the disjoint counts that are billed at different rates."""

    input: int
    cached_input: int
    cache_write: int
    output: int
    reasoning: int


def billed_tokens(usage: Usage) -> BilledTokens:
    """The disjoint billed counts of canonical `usage`. Inconsistent figures from an
    upstream (more cache reads than prompt tokens) bill what was reported, never a
    negative count."""
    cached = max(0, usage.cached_tokens)
    written = max(0, usage.cache_write_tokens)
    reasoning = max(0, usage.reasoning_tokens)
    return BilledTokens(
        input=max(0, usage.input_tokens - cached - written),
        cached_input=cached,
        cache_write=written,
        output=max(0, usage.output_tokens - reasoning),
        reasoning=reasoning)


def cost(usage: Usage, price: Price, *, estimated: bool = False) -> Cost:
    """What `usage` costs at `price`. The long-context tier, if any, is chosen by the
    whole prompt (`usage.input_tokens`, cache reads and writes included), as Gemini and
    Anthropic bill it."""
    tokens = billed_tokens(usage)
    rates = price.rates(max(0, usage.input_tokens))
    return Cost(
        input=_charge(tokens.input, rates.input),
        cached_input=_charge(tokens.cached_input, rates.cached_input),
        cache_write=_charge(tokens.cache_write, rates.cache_write),
        output=_charge(tokens.output, rates.output),
        reasoning=_charge(tokens.reasoning, rates.reasoning),
        estimated=estimated)


def _charge(tokens: int, per_mtok: Decimal) -> Decimal:
    return _EXACT.multiply(Decimal(tokens), per_mtok).scaleb(-_MILLION, _EXACT)
