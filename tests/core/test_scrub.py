"""The secret scrubber: configured secrets, their prefixes, and key-shaped text."""

from __future__ import annotations

import pytest

from turnout.core.errors import AllAttemptsFailed, Attempt, AuthenticationFailed
from turnout.core.scrub import MIN_PREFIX, NO_SECRETS, REDACTED, SecretScrubber

KEY = "cnry-7Qm2xZ9pLk4vB8nR1tW6hJ3"
"""A configured key not shaped like any provider's: only the config can say it is one."""


def test_a_configured_secret_and_its_prefixes_are_scrubbed() -> None:
    scrub = SecretScrubber.build([KEY]).scrub
    assert scrub(f"Incorrect API key provided: {KEY}.") == \
        f"Incorrect API key provided: {REDACTED}."
    for length in (MIN_PREFIX, MIN_PREFIX + 1, len(KEY) - 1):
        assert scrub(f"key {KEY[:length]}... is invalid") == f"key {REDACTED}... is invalid"
    # Shorter prefixes say nothing about the key; the text stays readable.
    assert scrub(f"key {KEY[:MIN_PREFIX - 1]}") == f"key {KEY[:MIN_PREFIX - 1]}"


def test_keys_sharing_their_first_characters_each_match_to_their_end() -> None:
    first, second = "shared-prefix-AAAAAAAA", "shared-prefix-BBBBBBBB"
    scrub = SecretScrubber.build([first, second]).scrub
    assert scrub(f"{second} and {first} and {second[:16]}") == \
        f"{REDACTED} and {REDACTED} and {REDACTED}"


def test_a_secret_with_unusual_characters_is_scrubbed_whole() -> None:
    secret = "p@ss w0rd/with+odd=chars!"
    assert SecretScrubber.build([secret]).scrub(f"got '{secret}'") == f"got '{REDACTED}'"


def test_very_short_and_missing_secrets_are_ignored() -> None:
    scrubber = SecretScrubber.build([None, "", "abc"])
    assert scrubber.scrub("abc abc") == "abc abc"
    assert scrubber.heads is None


@pytest.mark.parametrize("token", [
    "sk-" + "a1B2" * 12,
    "sk-proj-" + "Xy9_-Z" * 20,
    "sk-ant-api03-" + "q" * 80 + "-AAAA",
    "sk-or-v1-" + "0f" * 32,
    "sk-proj-********************wxyz",
    "AIzaSyD" + "k" * 32,
])
def test_key_shaped_tokens_are_scrubbed_without_config(token: str) -> None:
    assert NO_SECRETS.scrub(f"Incorrect API key provided: {token}.") == \
        f"Incorrect API key provided: {REDACTED}."


def test_bearer_tokens_and_url_credentials_are_scrubbed() -> None:
    assert NO_SECRETS.scrub("Authorization: Bearer eyJhbGciOi.JIUzI1.NiJ9 rejected") == \
        f"Authorization: Bearer {REDACTED} rejected"
    assert NO_SECRETS.scrub("GET /v1beta/models?alt=sse&key=abc123def456 failed") == \
        f"GET /v1beta/models?alt=sse&{REDACTED} failed"


def test_ordinary_text_is_left_alone() -> None:
    text = ("The model `gpt-4o-mini` is overloaded; retry after 3s. Tokens: 12 > 8 "
            "(scikit-learn, desk-top, bearer of bad news).")
    assert SecretScrubber.build([KEY]).scrub(text) == text


def test_a_half_masked_echo_of_a_configured_key_goes_whole() -> None:
    key = "sk-proj-" + "Q" * 40 + "wxyz"
    scrub = SecretScrubber.build([key]).scrub
    assert scrub("provided: sk-proj-****************wxyz.") == f"provided: {REDACTED}."


def test_scrub_error_cleans_message_str_repr_args_and_param() -> None:
    error = AuthenticationFailed(f"bad key {KEY}", origin="upstream", param=KEY)
    SecretScrubber.build([KEY]).scrub_error(error)
    for text in (error.message, str(error), repr(error), repr(error.args), error.param):
        assert KEY[:MIN_PREFIX] not in str(text)
    # The aggregate error names the last error's (already scrubbed) message.
    failed = AllAttemptsFailed([Attempt("t", "error", error)])
    assert REDACTED in failed.message and KEY[:MIN_PREFIX] not in failed.message
