"""Sealing tenants' provider keys at rest: AES-256-GCM under the configured master keys.

A sealed key is `version (1 byte) | nonce (12 random bytes) | ciphertext | tag (16)`,
stored with the id of the master key that sealed it. The associated data binds the
ciphertext to its row (tenant id, provider name) and to that master key id, so a
ciphertext copied onto another tenant's row, another provider's, or relabelled with
another master key id fails authentication instead of decrypting.

Each master key is never used directly: HKDF-SHA256 derives one subkey for encryption and
another for fingerprints, so the two uses cannot interact. A random 96-bit nonce per
encryption is safe for far more seals than a gateway makes under one key (the usual bound
is 2**32 per key).

Rotation: the first configured master key seals; every listed key opens what it sealed.
Add a new key first in the list, run `turnout tenancy reencrypt` (`Sealer.reseal` on every
row), then drop the old key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from turnout.config.runtime import MasterKey

VERSION = 1
"""The format byte every sealed key starts with."""
_NONCE = 12
_TAG = 16
_AAD_LABEL = b"turnout provider key v1"
_FINGERPRINT_HEX = 12
"""48 bits of HMAC: enough to tell a tenant's keys apart, and nothing to brute-force
against without the master key."""
_TAIL = 4
_MIN_TAIL_KEY = 16
"""Keys shorter than this show no tail in their fingerprint (four characters would be too
large a share of them)."""


class SealError(Exception):
    """A stored key cannot be opened. The message names the row and the master key id,
    never any key material."""


class UnknownMasterKey(SealError):
    """The key was sealed under a master key id that is not configured (any more)."""

    def __init__(self, master_key_id: str, tenant_id: str, provider: str) -> None:
        super().__init__(f"the provider key of tenant {tenant_id!r} for {provider!r} is sealed "
                         f"under master key {master_key_id!r}, which is not in "
                         "tenancy.master_keys")
        self.master_key_id = master_key_id


class TamperedKey(SealError):
    """The ciphertext does not authenticate: altered, truncated, or moved from another row."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed provider key, as stored."""

    ciphertext: bytes = field(repr=False)
    master_key_id: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class _Keys:
    aead: AESGCM = field(repr=False)
    fingerprint: bytes = field(repr=False)


class Sealer:
    """Seals under the current (first) master key; opens under any listed one. Immutable."""

    __slots__ = ("_current", "_keys")

    def __init__(self, master_keys: Sequence[MasterKey]) -> None:
        if not master_keys:
            raise ValueError("a sealer needs at least one master key")
        self._keys = {k.id: _derive(k.key) for k in master_keys}
        if len(self._keys) != len(master_keys):
            raise ValueError("master key ids must be unique")
        self._current = master_keys[0].id

    @property
    def current_id(self) -> str:
        """The id of the master key new seals use."""
        return self._current

    def knows(self, master_key_id: str) -> bool:
        return master_key_id in self._keys

    def seal(self, api_key: str, tenant_id: str, provider: str) -> Sealed:
        """`api_key` sealed for the row (`tenant_id`, `provider`) under the current key."""
        keys = self._keys[self._current]
        nonce = os.urandom(_NONCE)
        body = keys.aead.encrypt(nonce, api_key.encode(),
                                 _aad(tenant_id, provider, self._current))
        return Sealed(bytes([VERSION]) + nonce + body, self._current,
                      self.fingerprint(api_key))

    def open(self, sealed: bytes, master_key_id: str, tenant_id: str, provider: str) -> str:
        """The provider key sealed in `sealed`. Raises `UnknownMasterKey` or
        `TamperedKey`."""
        keys = self._keys.get(master_key_id)
        if keys is None:
            raise UnknownMasterKey(master_key_id, tenant_id, provider)
        if len(sealed) < 1 + _NONCE + _TAG or sealed[0] != VERSION:
            raise TamperedKey(f"the provider key of tenant {tenant_id!r} for {provider!r} is "
                              "not in a format this version reads")
        nonce, body = sealed[1:1 + _NONCE], sealed[1 + _NONCE:]
        try:
            plain = keys.aead.decrypt(nonce, body, _aad(tenant_id, provider, master_key_id))
        except InvalidTag:
            raise TamperedKey(f"the provider key of tenant {tenant_id!r} for {provider!r} "
                              f"does not authenticate under master key {master_key_id!r} "
                              "(altered, or copied from another row)") from None
        return plain.decode()

    def reseal(self, sealed: bytes, master_key_id: str, tenant_id: str,
               provider: str) -> Sealed | None:
        """The row sealed anew under the current key (fingerprint recomputed), or None when
        it already is. Raises like `open`."""
        if master_key_id == self._current:
            return None
        return self.seal(self.open(sealed, master_key_id, tenant_id, provider),
                         tenant_id, provider)

    def fingerprint(self, api_key: str) -> str:
        """What the admin API shows of a key: `...wxyz:0123456789ab`.

        The tail (last four characters, as provider consoles show them; omitted for keys
        under 16 characters) lets a person recognise the key. The hex part is HMAC-SHA256
        of the key under a subkey derived from the current master key, truncated to 48
        bits: it tells apart two keys that share a tail, and it is keyed so that whoever
        sees fingerprints (a tenant, an operator, a database dump) cannot test guesses or
        a leaked key against them; an unkeyed hash would let them, cheaply, offline.
        Fingerprints change when the master key rotates (`reencrypt` recomputes them)."""
        mac = hmac.new(self._keys[self._current].fingerprint, api_key.encode(),
                       hashlib.sha256).hexdigest()[:_FINGERPRINT_HEX]
        tail = api_key[-_TAIL:] if len(api_key) >= _MIN_TAIL_KEY else ""
        return f"...{tail}:{mac}"


def _derive(master: bytes) -> _Keys:
    return _Keys(AESGCM(_hkdf(master, b"turnout byok aes-256-gcm")),
                 _hkdf(master, b"turnout byok fingerprint"))


def _hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def _aad(tenant_id: str, provider: str, master_key_id: str) -> bytes:
    # Length-prefixed, so that no choice of names makes two rows' data equal.
    parts = [_AAD_LABEL, tenant_id.encode(), provider.encode(), master_key_id.encode()]
    return b"".join(len(p).to_bytes(2, "big") + p for p in parts)
