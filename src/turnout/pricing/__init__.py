"""Prices: the bundled price table and the prices config may set."""

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
    "BundledPrice", "LongContextPrice", "Price", "PriceTable", "PriceTableError", "Rates",
    "Unpriced", "bundled_prices", "lookup_price", "parse_prices",
]
