"""The virtual key format: minted keys parse back, anything else is not a key."""

from __future__ import annotations

import pytest

from turnout.tenancy import keys


def test_a_minted_key_parses_back_and_verifies() -> None:
    minted = keys.mint()
    parsed = keys.parse(minted.token)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == minted.key_id and keys.looks_like_key_id(key_id)
    assert keys.verify(secret, minted.digest)
    assert not keys.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B"), minted.digest)
    assert secret not in minted.digest.hex() and len(minted.digest) == 32


def test_keys_are_unique() -> None:
    minted = [keys.mint() for _ in range(200)]
    assert len({m.token for m in minted}) == len({m.key_id for m in minted}) == 200


@pytest.mark.parametrize("token", [
    "", "tk_", "sk-proj-abc", "tk_" + "a" * 16 + "_" + "b" * 42,
    "tk_" + "a" * 16 + "-" + "b" * 43, "tk_" + "A" * 16 + "_" + "b" * 43,
    "tk_" + "a" * 15 + "1_" + "b" * 43, "tk_" + "a" * 16 + "_" + "b" * 42 + "=",
    "tk_" + "a" * 16 + "_" + "b" * 42 + "'", "TK_" + "a" * 16 + "_" + "b" * 43,
])
def test_anything_else_is_not_a_key(token: str) -> None:
    assert keys.parse(token) is None


@pytest.mark.parametrize("value", ["../etc", "a" * 15, "a" * 17, "' OR 1=1 --", "A" * 16])
def test_key_ids_have_one_shape(value: str) -> None:
    assert not keys.looks_like_key_id(value)
