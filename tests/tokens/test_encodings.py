"""The shipped encodings: checked by SHA-256, loaded with no network, identical to tiktoken's."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken_ext.openai_public as openai_public

from turnout.tokens.encodings import (
    SPECS,
    EncodingError,
    encoding_name_for_model,
    get_encoding,
    read_ranks,
)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Every socket connect fails, and tiktoken's cache directory is an empty folder that
    must stay empty; the encoding cache is cleared so that files are really read."""

    def refuse(*_: Any, **__: Any) -> None:
        raise OSError("network is unreachable in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    get_encoding.cache_clear()
    yield tmp_path
    get_encoding.cache_clear()


def test_the_network_block_is_real(no_network: Path) -> None:
    with pytest.raises(OSError, match="unreachable"), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))


def test_counting_works_with_the_network_unreachable(no_network: Path) -> None:
    # Vectors from tiktoken's own documentation and test suite.
    assert get_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
    assert get_encoding("cl100k_base").encode("tiktoken is great!") == [
        83, 1609, 5963, 374, 2294, 0]
    assert get_encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]
    assert list(no_network.iterdir()) == []  # nothing written to tiktoken's cache


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_specs_match_tiktokens_own_constructor(monkeypatch: pytest.MonkeyPatch,
                                               name: str) -> None:
    spec = SPECS[name]
    seen: list[str | None] = []

    def load(_url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen.append(expected_hash)
        return read_ranks(spec)

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", load)
    theirs = openai_public.ENCODING_CONSTRUCTORS[name]()
    assert seen == [spec.sha256]  # the checksum we verify is the one tiktoken publishes
    assert theirs["pat_str"] == spec.pat_str
    assert theirs["special_tokens"] == dict(spec.special_tokens)
    ours = get_encoding(name)  # type: ignore[arg-type]
    reference = tiktoken.Encoding(**theirs)
    text = "Hello, world! 12345 — ünïcödé  \n\n\tcode(x) => x ** 2; 日本語のテキスト"
    assert ours.encode_ordinary(text) == reference.encode_ordinary(text)
    assert ours.n_vocab == reference.n_vocab


def test_a_file_that_does_not_match_its_checksum_is_refused() -> None:
    wrong = dataclasses.replace(SPECS["cl100k_base"], sha256="0" * 64)
    with pytest.raises(EncodingError, match="expected 0000"):
        read_ranks(wrong)


def test_a_missing_file_is_refused() -> None:
    missing = dataclasses.replace(SPECS["cl100k_base"], file="nope.tiktoken.gz")
    with pytest.raises(EncodingError, match="missing"):
        read_ranks(missing)


def test_ranks_are_dense_and_complete() -> None:
    ranks = read_ranks(SPECS["o200k_base"])
    assert len(ranks) == 199998
    assert sorted(ranks.values()) == list(range(199998))


@pytest.mark.parametrize(("model", "name"), [
    ("gpt-5", "o200k_base"), ("gpt-5-mini", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
    ("gpt-4o-2024-08-06", "o200k_base"), ("o3", "o200k_base"), ("o4-mini", "o200k_base"),
    ("gpt-oss-120b", "o200k_base"),  # harmony: o200k_base plus special tokens
    ("gpt-4", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
    ("text-davinci-003", None),  # p50k_base: not shipped
    ("claude-sonnet-4-5", None), ("llama3", None),
])
def test_encoding_for_model(model: str, name: str | None) -> None:
    assert encoding_name_for_model(model) == name

