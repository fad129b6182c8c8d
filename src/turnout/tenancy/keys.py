"""Virtual key format: a non-secret id to look the key up by, and 32 random bytes of secret.

A key reads `tk_<id>_<secret>`: `id` is 16 lowercase base32 characters (80 bits, stored in
the clear, shown in listings and the ledger), `secret` is 32 random bytes in URL-safe
base64 (43 characters). Only SHA-256 of the secret is stored. A fast hash is right here:
a 256-bit random secret cannot be guessed, so the slow, salted hashes that protect short
human passwords would only add per-request latency (the key is checked on every call).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "tk_"
_ID_LEN = 16
_SECRET_BYTES = 32
_SECRET_LEN = 43  # len(urlsafe_b64encode(32 bytes)) without padding
_ID_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_KEY = re.compile(f"{PREFIX}([a-z2-7]{{{_ID_LEN}}})_([A-Za-z0-9_-]{{{_SECRET_LEN}}})")
"""A whole key: the prefix, an id of `_ID_ALPHABET`, `_`, a secret in URL-safe base64."""


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly minted key: `token` is shown to its owner once and never stored."""

    key_id: str
    token: str
    digest: bytes


def mint() -> NewKey:
    """A new random key."""
    key_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    secret = base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=")
    return NewKey(key_id, f"{PREFIX}{key_id}_{secret}", digest(secret))


def parse(token: str) -> tuple[str, str] | None:
    """`(key_id, secret)` of a well-formed virtual key, else None (cheap: no hashing)."""
    match = _KEY.fullmatch(token)
    return None if match is None else (match[1], match[2])


def looks_like_key_id(value: str) -> bool:
    """Whether `value` has the shape of a key id (for validating path parameters)."""
    return len(value) == _ID_LEN and _ID_ALPHABET.issuperset(value)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def verify(secret: str, stored: bytes) -> bool:
    """Constant-time comparison of `secret` against a stored digest."""
    return hmac.compare_digest(digest(secret), stored)
