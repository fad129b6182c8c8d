"""Plain-text/markdown tables for the benchmarks' output."""

from __future__ import annotations

import math
from collections.abc import Sequence


def ms(seconds: float) -> str:
    """Seconds as milliseconds with a precision suited to the size."""
    if math.isnan(seconds):
        return "-"
    value = seconds * 1000
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def signed_ms(seconds: float) -> str:
    text = ms(seconds)
    return text if text == "-" or text.startswith("-") else "+" + text


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table, columns padded so that it also reads well as plain text."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
