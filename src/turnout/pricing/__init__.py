"""Prices and costs: the bundled price table, config price overrides, exact per-attempt
cost from canonical usage, and estimates where usage is missing (`turnout.pricing.estimate`,
which needs the offline token counter)."""

from turnout.pricing.cost import ZERO_COST, BilledTokens, Cost, billed_tokens, cost
from turnout.pricing.table import (
    BundledPrice,
    LongContextPrice,
    Price,
    PriceTable,
    PriceTableError,
    Rates,
    Unpriced,
    bundled_prices,
    lookup_price,
    parse_prices,
)

__all__ = [
    "ZERO_COST", "BilledTokens", "BundledPrice", "Cost", "LongContextPrice", "Price",
    "PriceTable", "PriceTableError", "Rates", "Unpriced", "billed_tokens", "bundled_prices",
    "cost", "lookup_price", "parse_prices",
]
