"""Whether the gateway's keys are strong enough to face a network.

A gateway key guards provider credit, so it must not be guessable: at least
`MIN_KEY_CHARS` characters and an estimated `MIN_KEY_BITS` bits of entropy. `turnout serve`
refuses weaker keys on any address but loopback, and warns about them on loopback (where
only local processes can try them). The estimate is deliberately simple and generous (it
cannot tell a random key from a patterned one of the same alphabet); it exists to stop the
keys people type: `test`, `changeme`, a word repeated.
"""

from __future__ import annotations

import math
import string

from turnout.config.runtime import ServerSettings

MIN_KEY_CHARS = 32
MIN_KEY_BITS = 128
GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
"""The command the refusal suggests: 43 URL-safe characters, 256 random bits."""

# Hex keys (and UUIDs, whose hyphens carry nothing), in either case, with a letter in them:
# digits alone are counted as digits.
_HEX = (frozenset("0123456789abcdef-"), frozenset("0123456789ABCDEF-"))
_HEX_LETTERS = frozenset("abcdefABCDEF")
_CLASSES = ((frozenset(string.digits), 10), (frozenset(string.ascii_lowercase), 26),
            (frozenset(string.ascii_uppercase), 26))
_OTHER = 33
"""Punctuation and anything else, counted as ASCII's 33 non-alphanumeric characters."""


def estimated_bits(key: str) -> float:
    """About how many bits of entropy `key` has if it was drawn at random: its length times
    log2 of its alphabet, the alphabet being what its characters suggest (hex digits: 16;
    else 10 for digits, 26 per letter case, 33 for anything else). A key that repeats
    itself (fewer distinct characters than half of its alphabet or length, whichever is
    smaller) only counts its distinct characters as the alphabet."""
    chars = set(key)
    if chars & _HEX_LETTERS and any(chars <= hex_chars for hex_chars in _HEX):
        key, alphabet = key.replace("-", ""), 16
    else:
        alphabet = sum(size for members, size in _CLASSES if chars & members)
        if chars - set(string.ascii_letters + string.digits):
            alphabet += _OTHER
    distinct = len(set(key))
    if distinct < min(alphabet, len(key)) / 2:
        alphabet = distinct
    return len(key) * math.log2(alphabet) if alphabet > 1 else 0.0


def is_strong(key: str) -> bool:
    """At least `MIN_KEY_CHARS` characters and about `MIN_KEY_BITS` bits."""
    return len(key) >= MIN_KEY_CHARS and estimated_bits(key) >= MIN_KEY_BITS


def weak_keys_problem(settings: ServerSettings) -> str | None:
    """What is wrong with the gateway keys and `server.metrics_key`, and how to fix it, or
    None when every key is strong. Names keys by length, never by content."""
    weak = sorted(f"a gateway key of {_describe(key)}"
                  for key in settings.gateway_keys if not is_strong(key))
    if settings.metrics_key is not None and not is_strong(settings.metrics_key):
        weak.append(f"server.metrics_key of {_describe(settings.metrics_key)}")
    if not weak:
        return None
    return (f"weak keys: {'; '.join(weak)}. Anyone who can reach the gateway could guess "
            f"such a key; keys need at least {MIN_KEY_CHARS} random characters (about "
            f"{MIN_KEY_BITS} bits). Generate one with: {GENERATE}")


def _describe(key: str) -> str:
    plural = "" if len(key) == 1 else "s"
    return f"{len(key)} character{plural} (about {estimated_bits(key):.0f} bits)"
