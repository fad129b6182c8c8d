"""tiktoken encodings loaded from files shipped with Turnout, never from the network.

tiktoken's own loader downloads rank files on first use and writes them to a cache
directory. Both are unwanted here (no network at run time, no side effects), so the ranks
are read from package data, checked against the SHA-256 that tiktoken publishes for them,
and handed to `tiktoken.Encoding` directly. The split patterns and special tokens are those
of `tiktoken_ext/openai_public.py`; a test rebuilds each encoding with tiktoken's own
constructor to prove they have not drifted.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal

import tiktoken
import tiktoken.model

EncodingName = Literal["o200k_base", "cl100k_base"]
"""The encodings Turnout ships: every current OpenAI chat model uses one of them."""

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True, slots=True)
class EncodingSpec:
    """Everything needed to build one encoding offline."""

    file: str
    """Package-data file (gzip-compressed tiktoken rank file) under `turnout.tokens/data`."""
    sha256: str
    """SHA-256 of the uncompressed rank file, as tiktoken publishes it."""
    pat_str: str
    special_tokens: Mapping[str, int]


_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

SPECS: Mapping[str, EncodingSpec] = MappingProxyType({
    "o200k_base": EncodingSpec(
        file="o200k_base.tiktoken.gz",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PAT,
        special_tokens=MappingProxyType({ENDOFTEXT: 199999, ENDOFPROMPT: 200018})),
    "cl100k_base": EncodingSpec(
        file="cl100k_base.tiktoken.gz",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=_CL100K_PAT,
        special_tokens=MappingProxyType({
            ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260, ENDOFPROMPT: 100276})),
})

_SAME_RANKS: Mapping[str, EncodingName] = MappingProxyType({"o200k_harmony": "o200k_base"})
"""Encodings whose ordinary text tokenises exactly like a shipped one (gpt-oss's harmony
format only adds special tokens to o200k_base)."""


class EncodingError(RuntimeError):
    """A bundled rank file is missing or does not match its published checksum (a broken
    install; never a reason to fall back to downloading)."""


def read_ranks(spec: EncodingSpec) -> dict[bytes, int]:
    """The spec's mergeable ranks, after checking the file's SHA-256."""
    try:
        packed = resources.files("turnout.tokens").joinpath("data", spec.file).read_bytes()
    except FileNotFoundError:
        raise EncodingError(f"bundled encoding file {spec.file} is missing") from None
    contents = gzip.decompress(packed)
    digest = hashlib.sha256(contents).hexdigest()
    if digest != spec.sha256:
        raise EncodingError(f"bundled encoding file {spec.file} has SHA-256 {digest}, "
                            f"expected {spec.sha256}")
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def get_encoding(name: EncodingName) -> tiktoken.Encoding:
    """A shipped encoding, built once per process (about 0.4 s for o200k_base); the result
    is immutable and safe to share between threads."""
    spec = SPECS[name]
    return tiktoken.Encoding(name=name, pat_str=spec.pat_str, mergeable_ranks=read_ranks(spec),
                             special_tokens=dict(spec.special_tokens))


def encoding_name_for_model(model: str) -> EncodingName | None:
    """The shipped encoding an OpenAI model uses, from tiktoken's own model table (a pure
    lookup), or None for a model tiktoken does not know or an encoding not shipped."""
    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return None
    name = _SAME_RANKS.get(name, name)
    if name == "o200k_base":
        return "o200k_base"
    if name == "cl100k_base":
        return "cl100k_base"
    return None
