"""Provider kinds are data rows with the vendors' documented endpoints and key variables."""

from __future__ import annotations

import pytest

from turnout.dialects.registry import DIALECT_MODULES
from turnout.providers.catalog import bundled_catalog
from turnout.providers.rows import (
    AUTODETECT_KINDS,
    PROVIDER_ROWS,
    api_root,
    find_env_key,
    get_row,
)


@pytest.mark.parametrize(("kind", "dialect", "base_url", "env_keys"), [
    ("openai", "openai_chat", "https://api.openai.com/v1", ("OPENAI_API_KEY",)),
    ("anthropic", "anthropic_messages", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",)),
    ("gemini", "gemini", "https://generativelanguage.googleapis.com",
     ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    ("openrouter", "openai_chat", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)),
    ("openai_compatible", "openai_chat", None, ()),
    ("vllm", "openai_chat", "http://localhost:8000/v1", ()),
    ("ollama", "openai_chat", "http://localhost:11434/v1", ()),
    ("llamacpp", "openai_chat", "http://localhost:8080/v1", ()),
    ("lmstudio", "openai_chat", "http://localhost:1234/v1", ()),
    ("local", "openai_chat", None, ()),
])
def test_rows(kind: str, dialect: str, base_url: str | None, env_keys: tuple[str, ...]) -> None:
    row = get_row(kind)
    assert (row.dialect, row.base_url, row.env_keys) == (dialect, base_url, env_keys)
    assert row.key_required == bool(env_keys)


def test_every_row_uses_a_registered_dialect_and_no_trailing_slash() -> None:
    for row in PROVIDER_ROWS.values():
        assert row.dialect in DIALECT_MODULES
        assert row.base_url is None or not row.base_url.endswith("/")


def test_catalog_sections_belong_to_rows() -> None:
    sections = {row.catalog for row in PROVIDER_ROWS.values() if row.catalog}
    assert sections == set(bundled_catalog())


def test_openrouter_attribution_headers() -> None:
    assert dict(get_row("openrouter").attribution_headers) == {
        "referer": "HTTP-Referer", "title": "X-Title"}


def test_unknown_kind() -> None:
    with pytest.raises(KeyError, match="unknown provider kind 'nope'; known: openai"):
        get_row("nope")


def test_find_env_key_prefers_the_first_set_variable() -> None:
    gemini = get_row("gemini")
    assert find_env_key(gemini, {"GOOGLE_API_KEY": "g"}) == "GOOGLE_API_KEY"
    assert find_env_key(gemini, {"GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "m"}) == (
        "GEMINI_API_KEY")
    assert find_env_key(gemini, {"GEMINI_API_KEY": ""}) is None


def test_autodetected_kinds_are_hosted_and_need_keys() -> None:
    assert AUTODETECT_KINDS == ("openai", "anthropic", "gemini", "openrouter")
    assert all(get_row(k).key_required for k in AUTODETECT_KINDS)


@pytest.mark.parametrize(("kind", "base_url", "root"), [
    # The SDKs' convention (ANTHROPIC_BASE_URL, google-genai's base_url): the host root.
    ("anthropic", "https://api.anthropic.com", "https://api.anthropic.com/v1"),
    ("anthropic", "https://api.anthropic.com/", "https://api.anthropic.com/v1"),
    ("anthropic", "https://api.anthropic.com/v1", "https://api.anthropic.com/v1"),
    ("anthropic", "https://api.anthropic.com/v1/", "https://api.anthropic.com/v1"),
    # A proxy under a path prefix: the SDK would add /v1 after it, and so do we.
    ("anthropic", "https://gw.example/acct/anthropic", "https://gw.example/acct/anthropic/v1"),
    ("anthropic", "http://127.0.0.1:9101", "http://127.0.0.1:9101/v1"),
    ("gemini", "https://generativelanguage.googleapis.com",
     "https://generativelanguage.googleapis.com/v1beta"),
    ("gemini", "https://generativelanguage.googleapis.com/v1beta",
     "https://generativelanguage.googleapis.com/v1beta"),
    # An explicit other version is kept, as google-genai's api_version would be.
    ("gemini", "https://generativelanguage.googleapis.com/v1",
     "https://generativelanguage.googleapis.com/v1"),
    ("gemini", "http://127.0.0.1:9102/v1alpha/", "http://127.0.0.1:9102/v1alpha"),
    # OpenAI's convention includes the version: the URL is used as written.
    ("openai", "https://api.openai.com/v1/", "https://api.openai.com/v1"),
    ("openai_compatible", "http://10.0.0.5:8000", "http://10.0.0.5:8000"),
    ("openrouter", "https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
])
def test_api_root_follows_each_sdks_convention(kind: str, base_url: str, root: str) -> None:
    assert api_root(get_row(kind), base_url) == root


def test_every_default_endpoint_is_its_own_api_root_once_normalised() -> None:
    for row in PROVIDER_ROWS.values():
        if row.base_url is not None:
            root = api_root(row, row.base_url)
            assert api_root(row, root) == root
            assert root.endswith(("/v1", "/v1beta"))
