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
    per_input, per_cached, per_write, per_output, per_reasoning = price.rates(
        max(0, usage.input_tokens)).per_token
    multiply = _EXACT.multiply
    return Cost(
        input=multiply(Decimal(tokens.input), per_input),
        cached_input=multiply(Decimal(tokens.cached_input), per_cached),
        cache_write=multiply(Decimal(tokens.cache_write), per_write),
        output=multiply(Decimal(tokens.output), per_output),
        reasoning=multiply(Decimal(tokens.reasoning), per_reasoning),
        estimated=estimated)


def micro_usd(usage: Usage, price: Price) -> int:
    """`cost(usage, price).micro_usd()` in integer arithmetic, without building a `Cost`:
    the same billed split and tier, each count times its rate's exact integer numerator
    (`Rates.numerators`), the sum divided by the rates' denominator and rounded up. For the
    hot path of the budget stage."""
    cached = max(0, usage.cached_tokens)
    written = max(0, usage.cache_write_tokens)
    reasoning = max(0, usage.reasoning_tokens)
    rates = price.rates(max(0, usage.input_tokens))
    n_input, n_cached, n_write, n_output, n_reasoning = rates.numerators
    units = (max(0, usage.input_tokens - cached - written) * n_input + cached * n_cached
             + written * n_write + max(0, usage.output_tokens - reasoning) * n_output
             + reasoning * n_reasoning)
    return -(-units // rates.denominator)
