"""`keys.parse` (one regular expression) accepts exactly the keys the format describes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from turnout.tenancy import keys

ID = "abcdefghijklmnopqrstuvwxyz234567"
SECRET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def reference_parse(token: str) -> tuple[str, str] | None:
    """The format checked piece by piece, as first written."""
    if len(token) != 3 + 16 + 1 + 43 or not token.startswith("tk_"):
        return None
    key_id, secret = token[3:19], token[20:]
    if token[19] != "_" or not set(ID).issuperset(key_id) or not set(SECRET).issuperset(secret):
        return None
    return key_id, secret


near_keys = st.builds(
    lambda prefix, key_id, sep, secret: prefix + key_id + sep + secret,
    st.sampled_from(["tk_", "tk-", "TK_", "", "tk_tk_"]),
    st.text(ID + "A1_\u00e9\u0661", min_size=15, max_size=17),
    st.sampled_from(["_", "-", "", "__"]),
    st.text(SECRET + "=+/ \n\u00e9\u0661", min_size=42, max_size=44))


@given(near_keys | st.text(max_size=70))
def test_parse_matches_the_format(token: str) -> None:
    assert keys.parse(token) == reference_parse(token)


def test_minted_keys_parse() -> None:
    for _ in range(200):
        new = keys.mint()
        assert keys.parse(new.token) == (new.key_id, new.token[20:])
        assert keys.parse(new.token + "\n") is None and keys.parse(new.token[:-1]) is None
