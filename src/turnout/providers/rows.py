"""Provider kinds as data rows.

A provider kind is a dialect, a default endpoint, where its key usually lives and a few
flags. Adding an OpenAI-compatible vendor means adding a row here, never new code paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

Dialect = Literal["openai_chat", "anthropic_messages", "gemini"]


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """What every provider of one kind has in common."""

    kind: str
    dialect: Dialect
    base_url: str | None
    """Default endpoint (no trailing slash), in the vendor SDK's own convention; None when
    the config must give one."""
    api_version: str | None = None
    """The version path the wire format lives under (`v1`, `v1beta`), appended to a
    `base_url` that does not already end in a version segment: the Anthropic and Gemini
    SDKs take the host root and add it themselves. None: `base_url` is the API root as
    written (OpenAI's convention, `.../v1` included)."""
    env_keys: tuple[str, ...] = ()
    """Environment variables that usually hold the key, in order of preference. Used when
    the config gives no `api_key`, and by environment autodetection."""
    key_required: bool = False
    """A provider of this kind cannot work without a key."""
    catalog: str | None = None
    """Section of the bundled model catalog describing this kind's models."""
    attribution_headers: Mapping[str, str] = field(default_factory=dict)
    """Config key -> HTTP header for optional app attribution (OpenRouter)."""
    description: str = ""


def _row(row: ProviderRow) -> tuple[str, ProviderRow]:
    return row.kind, row


PROVIDER_ROWS: Mapping[str, ProviderRow] = MappingProxyType(dict([
    _row(ProviderRow(
        kind="openai", dialect="openai_chat", base_url="https://api.openai.com/v1",
        env_keys=("OPENAI_API_KEY",), key_required=True, catalog="openai",
        description="OpenAI Chat Completions API")),
    _row(ProviderRow(
        kind="anthropic", dialect="anthropic_messages", base_url="https://api.anthropic.com",
        api_version="v1", env_keys=("ANTHROPIC_API_KEY",), key_required=True, catalog="anthropic",
        description="Anthropic Messages API")),
    _row(ProviderRow(
        kind="gemini", dialect="gemini",
        base_url="https://generativelanguage.googleapis.com", api_version="v1beta",
        env_keys=("GEMINI_API_KEY", "GOOGLE_API_KEY"), key_required=True, catalog="gemini",
        description="Google Gemini API (generateContent)")),
    _row(ProviderRow(
        kind="openrouter", dialect="openai_chat", base_url="https://openrouter.ai/api/v1",
        env_keys=("OPENROUTER_API_KEY",), key_required=True, catalog="openrouter",
        attribution_headers=MappingProxyType({"referer": "HTTP-Referer", "title": "X-Title"}),
        description="OpenRouter (OpenAI-compatible; `vendor/model` ids)")),
    _row(ProviderRow(
        kind="openai_compatible", dialect="openai_chat", base_url=None,
        description="Any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, "
                    "TensorRT-LLM's trtllm-serve, ...): base_url required")),
    _row(ProviderRow(
        kind="vllm", dialect="openai_chat", base_url="http://localhost:8000/v1",
        description="vLLM's OpenAI-compatible server (`vllm serve`)")),
    _row(ProviderRow(
        kind="ollama", dialect="openai_chat", base_url="http://localhost:11434/v1",
        description="Ollama's OpenAI-compatible endpoint")),
    _row(ProviderRow(
        kind="llamacpp", dialect="openai_chat", base_url="http://localhost:8080/v1",
        description="llama.cpp's `llama-server`")),
    _row(ProviderRow(
        kind="lmstudio", dialect="openai_chat", base_url="http://localhost:1234/v1",
        description="LM Studio's local server")),
    _row(ProviderRow(
        kind="local", dialect="openai_chat", base_url=None, catalog="local",
        description="The embedded llama.cpp model, run in-process by Turnout")),
]))
"""Every provider kind, by name."""

AUTODETECT_KINDS: tuple[str, ...] = ("openai", "anthropic", "gemini", "openrouter")
"""Kinds added automatically when their key is in the environment and no config file is
given, in this order."""


def get_row(kind: str) -> ProviderRow:
    """The row for `kind`; raises KeyError naming the known kinds."""
    try:
        return PROVIDER_ROWS[kind]
    except KeyError:
        raise KeyError(f"unknown provider kind {kind!r}; known: "
                       f"{', '.join(PROVIDER_ROWS)}") from None


def find_env_key(row: ProviderRow, environ: Mapping[str, str]) -> str | None:
    """The first of the row's key variables that is set (non-empty) in `environ`."""
    for name in row.env_keys:
        if environ.get(name):
            return name
    return None


_VERSION_SEGMENT = re.compile(r"v\d+(?:(?:alpha|beta)\d*)?")
"""A path segment that names an API version: `v1`, `v1beta`, `v1alpha`, `v2beta1`."""


def api_root(row: ProviderRow, base_url: str) -> str:
    """The URL the row's dialect appends its paths to, for a configured `base_url`: without
    a trailing slash, and with the row's `api_version` added unless the URL already ends in
    a version segment (`https://api.anthropic.com` and `https://api.anthropic.com/v1` both
    give `https://api.anthropic.com/v1`; a proxy's `https://gw.example/anthropic` gives
    `https://gw.example/anthropic/v1`, as the SDK would call it)."""
    url = base_url.rstrip("/")
    if row.api_version is None:
        return url
    last_segment = urlsplit(url).path.rpartition("/")[2]
    if _VERSION_SEGMENT.fullmatch(last_segment):
        return url
    return f"{url}/{row.api_version}"
