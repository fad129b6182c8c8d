"""Sealing tenants' provider keys: AES-GCM round trips, tampering and moved ciphertexts are
refused, rotation keeps old seals readable, fingerprints reveal nothing checkable."""

from __future__ import annotations

import hashlib
import os

import pytest

from turnout.config.runtime import MasterKey
from turnout.tenancy.sealing import VERSION, Sealer, TamperedKey, UnknownMasterKey

API_KEY = "sk-proj-Tenant0wnKey9x8y7z6w5v4u3t2s1r0q"
K1 = MasterKey("k1", os.urandom(32))
K2 = MasterKey("k2", os.urandom(32))


def test_a_sealed_key_opens_to_itself_and_holds_no_plaintext() -> None:
    sealer = Sealer([K1])
    sealed = sealer.seal(API_KEY, "acme", "openai")
    assert sealed.master_key_id == "k1" and sealed.ciphertext[0] == VERSION
    assert API_KEY.encode() not in sealed.ciphertext
    assert API_KEY[:8].encode() not in sealed.ciphertext
    assert sealer.open(sealed.ciphertext, "k1", "acme", "openai") == API_KEY
    assert API_KEY not in repr(sealed) and "key=" not in repr(K1)


def test_every_seal_has_its_own_nonce() -> None:
    sealer = Sealer([K1])
    seals = {sealer.seal(API_KEY, "acme", "openai").ciphertext for _ in range(50)}
    assert len(seals) == 50
    assert len({s[1:13] for s in seals}) == 50


@pytest.mark.parametrize("where", ["version", "nonce", "body", "tag"])
def test_any_altered_byte_is_refused(where: str) -> None:
    sealer = Sealer([K1])
    sealed = bytearray(sealer.seal(API_KEY, "acme", "openai").ciphertext)
    index = {"version": 0, "nonce": 5, "body": 14, "tag": len(sealed) - 1}[where]
    sealed[index] ^= 0x01
    with pytest.raises(TamperedKey):
        sealer.open(bytes(sealed), "k1", "acme", "openai")


def test_truncated_ciphertexts_are_refused() -> None:
    sealer = Sealer([K1])
    sealed = sealer.seal(API_KEY, "acme", "openai").ciphertext
    for cut in (0, 1, 13, len(sealed) - 1):
        with pytest.raises(TamperedKey):
            sealer.open(sealed[:cut], "k1", "acme", "openai")


@pytest.mark.parametrize(("tenant", "provider"), [
    ("globex", "openai"), ("acme", "anthropic"), ("acm", "eopenai"), ("acmeopenai", "")])
def test_a_ciphertext_moved_to_another_row_does_not_open(tenant: str, provider: str) -> None:
    sealer = Sealer([K1])
    sealed = sealer.seal(API_KEY, "acme", "openai").ciphertext
    with pytest.raises(TamperedKey) as caught:
        sealer.open(sealed, "k1", tenant, provider)
    assert API_KEY not in str(caught.value)


def test_a_relabelled_master_key_id_does_not_open() -> None:
    # The same key material under two ids: the id itself is authenticated.
    sealer = Sealer([K1, MasterKey("k1-copy", K1.key)])
    sealed = sealer.seal(API_KEY, "acme", "openai").ciphertext
    with pytest.raises(TamperedKey):
        sealer.open(sealed, "k1-copy", "acme", "openai")


def test_another_master_key_cannot_open_a_seal() -> None:
    sealed = Sealer([K1]).seal(API_KEY, "acme", "openai").ciphertext
    impostor = Sealer([MasterKey("k1", os.urandom(32))])
    with pytest.raises(TamperedKey):
        impostor.open(sealed, "k1", "acme", "openai")


def test_an_unknown_master_key_id_is_named() -> None:
    sealed = Sealer([K1]).seal(API_KEY, "acme", "openai").ciphertext
    with pytest.raises(UnknownMasterKey) as caught:
        Sealer([K2]).open(sealed, "k1", "acme", "openai")
    assert caught.value.master_key_id == "k1"
    assert "'k1'" in str(caught.value) and "acme" in str(caught.value)


def test_rotation_old_seals_open_until_resealed_then_the_old_key_goes() -> None:
    old = Sealer([K1]).seal(API_KEY, "acme", "openai")
    rotating = Sealer([K2, K1])  # k2 is current, k1 still opens
    assert rotating.current_id == "k2"
    assert rotating.open(old.ciphertext, "k1", "acme", "openai") == API_KEY
    new = rotating.reseal(old.ciphertext, "k1", "acme", "openai")
    assert new is not None and new.master_key_id == "k2"
    assert rotating.reseal(new.ciphertext, "k2", "acme", "openai") is None  # idempotent
    after = Sealer([K2])
    assert after.open(new.ciphertext, "k2", "acme", "openai") == API_KEY
    with pytest.raises(UnknownMasterKey):
        after.open(old.ciphertext, "k1", "acme", "openai")


def test_sealer_needs_keys_with_unique_ids() -> None:
    with pytest.raises(ValueError):
        Sealer([])
    with pytest.raises(ValueError):
        Sealer([K1, MasterKey("k1", os.urandom(32))])


def test_a_fingerprint_shows_the_tail_and_a_keyed_mac_only() -> None:
    sealer = Sealer([K1])
    fingerprint = sealer.fingerprint(API_KEY)
    tail, mac = fingerprint.removeprefix("...").split(":")
    assert tail == API_KEY[-4:] and len(mac) == 12
    assert sealer.fingerprint(API_KEY) == fingerprint  # stable
    assert sealer.fingerprint(API_KEY[:-1] + "X") != fingerprint
    # Not an unkeyed hash anyone could compute from a guess or a leaked key.
    for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5):
        assert mac not in digest(API_KEY.encode()).hexdigest()
    # Keyed by the (current) master key: another master key gives another fingerprint.
    assert Sealer([K2]).fingerprint(API_KEY) != fingerprint
    assert Sealer([K2, K1]).fingerprint(API_KEY) == Sealer([K2]).fingerprint(API_KEY)
    assert len(fingerprint) <= 64  # the column's width


def test_a_short_key_shows_no_tail() -> None:
    assert Sealer([K1]).fingerprint("short-key-12").startswith("...:")
