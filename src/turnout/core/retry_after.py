"""Reading how long an upstream asks us to wait, from its response headers."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait, from `retry-after-ms`, `retry-after` (seconds or HTTP date) or
    `x-ratelimit-reset-requests`/`-tokens` (`1s`, `6m0s`, `250ms`), whichever is present, in
    that order. Header names must be lower-case (aiohttp's CIMultiDict matches any case)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is not None:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - now())
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        value = headers.get(name)
        if value is not None:
            seconds = parse_duration(value)
            if seconds is not None:
                return seconds
    return None


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Parse Go-style durations as OpenAI sends them (`1s`, `6m0s`, `1h2m3.5s`, `250ms`)."""
    text = text.strip()
    if not text:
        return None
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in _UNITS or not number:
            return None
        total += float(number) * _UNITS[unit]
        number = ""
        i += len(unit)
    if number:  # a bare number means seconds
        total += float(number)
    return total
