"""The integer fast paths (`micro_usd`, `reservation_micro_usd`, `Rates.numerators`) agree
exactly with the Decimal `Cost`, and `cost` builds the very Decimals it always did."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnout.core.request import ChatRequest
from turnout.core.response import Usage
from turnout.pricing import Price, cost
from turnout.pricing.cost import billed_tokens, micro_usd
from turnout.pricing.estimate import reservation_cost, reservation_micro_usd
from turnout.tokens.count import counter_for

from .test_cost_properties import any_price, usages

_OLD = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation,
                                       decimal.Overflow])
raw_usages = st.builds(Usage, *(st.integers(-10**6, 10**12) for _ in range(5)))


def old_cost_fields(usage: Usage, price: Price) -> list[Decimal]:
    """`cost`'s fields as the previous implementation computed them."""
    tokens = billed_tokens(usage)
    r = price.rates(max(0, usage.input_tokens))
    return [_OLD.multiply(Decimal(n), rate).scaleb(-6, _OLD) for n, rate in (
        (tokens.input, r.input), (tokens.cached_input, r.cached_input),
        (tokens.cache_write, r.cache_write), (tokens.output, r.output),
        (tokens.reasoning, r.reasoning))]


@pytest.mark.parametrize(("usage", "rates", "expected"), [
    # 1,000 input at $0.15/M + 500 output at $0.60/M = $0.00045 = 450 micro-USD
    (Usage(1000, 500), ("0.15", "0.60"), 450),
    # 1 token at $0.15/M is 0.15 micro-USD: rounded up to 1
    (Usage(1, 0), ("0.15", "0.60"), 1),
    (Usage(0, 0), ("0.15", "0.60"), 0),
    # 7 tokens at $0.0001/M = 0.0007 micro-USD -> 1; exactly 3 micro-USD stays 3
    (Usage(7, 0), ("0.0001", "0"), 1),
    (Usage(20, 0), ("0.15", "0"), 3),
    # cache reads at 0.075, writes at 0.1875, reasoning at 0.6: 100 plain + 200 read +
    # 300 written, 40 visible + 60 reasoning
    # = 15 + 15 + 56.25 + 24 + 36 = 146.25 -> 147
    (Usage(600, 100, cached_tokens=200, cache_write_tokens=300, reasoning_tokens=60),
     ("0.15", "0.6", "0.075", "0.1875"), 147),
    # inconsistent upstream figures bill what was reported, never a negative count
    (Usage(10, 5, cached_tokens=50, reasoning_tokens=9), ("1", "2", "0.5"), 25 + 18),
])
def test_hand_checked_micro_usd(usage: Usage, rates: tuple[str, ...], expected: int) -> None:
    names = ("input", "output", "cached_input", "cache_write")
    price = Price(**dict(zip(names, rates, strict=False)))
    assert micro_usd(usage, price) == cost(usage, price).micro_usd() == expected


def test_rates_as_integers() -> None:
    rates = Price(input="0.15", output="1.25E+1", cached_input="0.0375",
                  cache_write="0").rates(0)
    # 3/20, 3/80, 0, 25/2, 25/2 over their least common denominator
    assert rates.denominator == 80
    assert rates.numerators == (12, 3, 0, 1_000, 1_000)
    assert rates.per_token == (Decimal("1.5E-7"), Decimal("3.75E-8"), Decimal("0E-6"),
                               Decimal("0.0000125"), Decimal("0.0000125"))


@given(usages(), any_price)
def test_integer_micro_usd_equals_the_decimal_cost(usage: Usage, price: Price) -> None:
    assert micro_usd(usage, price) == cost(usage, price).micro_usd()


@given(raw_usages, any_price)
def test_integer_micro_usd_equals_the_decimal_cost_for_any_figures(
        usage: Usage, price: Price) -> None:
    assert micro_usd(usage, price) == cost(usage, price).micro_usd()


@given(usages(), any_price)
def test_numerators_are_the_exact_rates(usage: Usage, price: Price) -> None:
    rates = price.rates(usage.input_tokens)
    exact = (rates.input, rates.cached_input, rates.cache_write, rates.output,
             rates.reasoning)
    assert [Fraction(n, rates.denominator) for n in rates.numerators] == [
        Fraction(r) for r in exact]
    assert list(rates.per_token) == [r.scaleb(-6) for r in exact]


@given(raw_usages, any_price)
def test_cost_builds_the_same_decimals_as_before(usage: Usage, price: Price) -> None:
    result = cost(usage, price)
    fields = [result.input, result.cached_input, result.cache_write, result.output,
              result.reasoning]
    assert [d.as_tuple() for d in fields] == [
        d.as_tuple() for d in old_cost_fields(usage, price)]


@given(st.integers(0, 10**7), st.integers(-5, 10**7), any_price)
def test_fast_reservation_equals_the_full_one(prompt: int, output: int,
                                              price: Price) -> None:
    counter = counter_for("openai_chat", "gpt-4o-mini")
    full = reservation_cost(ChatRequest(model="m", messages=[]), counter, price,
                            max_output_tokens=output, prompt_tokens=prompt)
    assert reservation_micro_usd(prompt, output, price) == full.micro_usd()


def test_a_copy_with_new_rates_is_priced_at_them() -> None:
    price = Price(input="1", output="2", long_context={"above_tokens": 10, "input": "3"})
    assert micro_usd(Usage(11, 0), price) == 33  # resolved rates cached on the price
    copied = price.model_copy(update={"input": Decimal(5), "long_context": None})
    assert copied.rates(11).input == 5 and micro_usd(Usage(11, 0), copied) == 55
    assert price.rates(11).input == 3 and price == Price.model_validate(price.model_dump())
    assert hash(price) == hash(Price.model_validate(price.model_dump()))
