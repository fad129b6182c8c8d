"""Properties of `cost`: exact, never negative, monotone in every token count, additive."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from turnout.core.response import Usage
from turnout.pricing import Cost, Price, bundled_prices, cost
from turnout.pricing.cost import billed_tokens

counts = st.integers(0, 10**9)
rates = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False,
                    allow_infinity=False)
optional_rates = st.none() | rates


@st.composite
def prices(draw: st.DrawFn) -> Price:
    """Random prices, long-context tiers included; tier rates are never below the standard
    ones (true of every real tier), which is what keeps cost monotone across the edge."""
    fields = {name: draw(optional_rates) for name in ("cached_input", "cache_write",
                                                      "reasoning")}
    price = Price(input=draw(rates), output=draw(rates), **fields)
    if draw(st.booleans()):
        std = price.rates(0)
        bump = {name: getattr(std, name) + draw(rates)
                for name in ("input", "output", "cached_input", "cache_write", "reasoning")}
        price = Price.model_validate({**price.model_dump(), "long_context": {
            "above_tokens": draw(st.integers(1, 10**6)), **bump}})
    return price


bundled = [row for rows in bundled_prices().values() for row in rows.values()
           if isinstance(row, Price)]
any_price = prices() | st.sampled_from(bundled)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """Consistent canonical usage: cache figures inside input, reasoning inside output."""
    uncached, cached, written, visible, reasoning = (draw(counts) for _ in range(5))
    return Usage(input_tokens=uncached + cached + written, output_tokens=visible + reasoning,
                 cached_tokens=cached, cache_write_tokens=written, reasoning_tokens=reasoning)


def exact_total(usage: Usage, price: Price) -> Fraction:
    """The same bill computed with fractions: an independent, rounding-free reference."""
    tokens = billed_tokens(usage)
    r = price.rates(usage.input_tokens)
    return sum((Fraction(n) * Fraction(rate) for n, rate in (
        (tokens.input, r.input), (tokens.cached_input, r.cached_input),
        (tokens.cache_write, r.cache_write), (tokens.output, r.output),
        (tokens.reasoning, r.reasoning))), Fraction(0)) / 10**6


@given(usages(), any_price)
def test_cost_is_exact(usage: Usage, price: Price) -> None:
    result = cost(usage, price)
    assert Fraction(result.total) == exact_total(usage, price)
    assert isinstance(result.total, Decimal)


@given(st.builds(Usage, *(st.integers(-10**6, 10**9) for _ in range(5))), any_price)
def test_cost_is_never_negative_even_for_inconsistent_usage(usage: Usage, price: Price) -> None:
    result = cost(usage, price)
    assert all(getattr(result, f) >= 0 for f in
               ("input", "cached_input", "cache_write", "output", "reasoning"))
    assert result.total >= 0 and result.micro_usd() >= 0


def _add(usage: Usage, kind: str, k: int) -> Usage:
    """`usage` with k more tokens of one billed kind (cache and reasoning tokens are also
    prompt and output tokens, so those totals grow with them)."""
    grow = {"input": {"input_tokens": k},
            "cached": {"input_tokens": k, "cached_tokens": k},
            "written": {"input_tokens": k, "cache_write_tokens": k},
            "output": {"output_tokens": k},
            "reasoning": {"output_tokens": k, "reasoning_tokens": k}}[kind]
    return dataclasses.replace(usage, **{f: getattr(usage, f) + n for f, n in grow.items()})


@given(usages(), any_price,
       st.sampled_from(["input", "cached", "written", "output", "reasoning"]),
       st.integers(1, 10**7))
def test_more_tokens_never_cost_less(usage: Usage, price: Price, kind: str, k: int) -> None:
    assert cost(_add(usage, kind, k), price).total >= cost(usage, price).total


@given(st.lists(st.tuples(usages(), any_price, st.booleans()), min_size=1, max_size=6))
def test_cost_is_additive_across_attempts(attempts: list[tuple[Usage, Price, bool]]) -> None:
    costs = [cost(u, p, estimated=e) for u, p, e in attempts]
    total = sum(costs, Cost())
    assert total.total == sum((c.total for c in costs), Decimal(0))
    assert total.estimated == any(e for _, _, e in attempts)
    assert total.input == sum((c.input for c in costs), Decimal(0))
    assert total.reasoning == sum((c.reasoning for c in costs), Decimal(0))


@given(usages(), any_price)
def test_micro_usd_is_the_total_rounded_up(usage: Usage, price: Price) -> None:
    result = cost(usage, price)
    micros = Fraction(result.total) * 10**6
    assert micros <= result.micro_usd() < micros + 1


@given(usages(), any_price)
def test_zero_usage_and_zero_prices_cost_nothing(usage: Usage, price: Price) -> None:
    assert cost(Usage(), price).total == 0
    assert cost(usage, Price(input=Decimal(0), output=Decimal(0))).total == 0
