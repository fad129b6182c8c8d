"""Image token formulas against the providers' documented examples, and header parsing."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnout.core.parts import ImagePart
from turnout.tokens.images import (
    ANTHROPIC_UNKNOWN,
    GEMINI_UNKNOWN,
    OPENAI_LOW_DETAIL,
    OPENAI_UNKNOWN,
    anthropic_tokens,
    gemini_tokens,
    image_size,
    image_tokens,
    openai_tokens,
)


def png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">II", width, height) + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\0\0\0"


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + bytes(9)
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + bytes(12)
    return b"\xff\xd8" + app0 + b"\xff\xc4\x00\x04\x00\x00" + sof0


def webp_vp8x(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + bytes(4)
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + bits.to_bytes(4, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def data_url(media_type: str, data: bytes) -> ImagePart:
    return ImagePart(f"data:{media_type};base64,{base64.b64encode(data).decode()}")


# OpenAI's documented examples: 1024x1024 high detail is 765 tokens, 2048x4096 is 1105.
@pytest.mark.parametrize(("size", "tokens"), [
    ((1024, 1024), 765), ((2048, 4096), 1105), ((512, 512), 255), ((4096, 8192), 1105)])
def test_openai_high_detail(size: tuple[int, int], tokens: int) -> None:
    assert openai_tokens(*size) == tokens


# Anthropic's table: 200x200 ~54, 1000x1000 ~1334, 1092x1092 ~1590 tokens.
@pytest.mark.parametrize(("size", "tokens"), [
    ((200, 200), 54), ((1000, 1000), 1334), ((1092, 1092), 1590)])
def test_anthropic(size: tuple[int, int], tokens: int) -> None:
    assert anthropic_tokens(*size) == tokens


def test_anthropic_large_images_are_scaled_down_first() -> None:
    assert anthropic_tokens(4000, 4000) <= ANTHROPIC_UNKNOWN
    assert anthropic_tokens(1568, 200) == anthropic_tokens(3136, 400)


@pytest.mark.parametrize(("size", "tokens"), [
    ((384, 384), 258), ((100, 300), 258), ((768, 768), 258), ((1024, 1024), 1032),
    ((1536, 768), 516)])
def test_gemini(size: tuple[int, int], tokens: int) -> None:
    assert gemini_tokens(*size) == tokens


@pytest.mark.parametrize("make", [png, gif, jpeg, webp_vp8x, webp_vp8l])
def test_sizes_are_read_from_each_format(make: object) -> None:
    assert callable(make)
    assert image_size(data_url("image/x", make(1024, 768))) == (1024, 768)


@given(st.integers(1, 16383), st.integers(1, 16383),
       st.sampled_from([png, gif, jpeg, webp_vp8x, webp_vp8l]))
def test_any_size_round_trips_through_a_header(width: int, height: int, make: object) -> None:
    assert callable(make)
    assert image_size(data_url("image/x", make(width, height))) == (width, height)


def test_tokens_by_family_for_a_known_size() -> None:
    part = data_url("image/png", png(1024, 1024))
    assert image_tokens(part, "openai") == 765
    assert image_tokens(part, "other") == 765
    assert image_tokens(part, "anthropic") == 1399  # 1024*1024/750, rounded up
    assert image_tokens(part, "gemini") == 1032


def test_low_detail_is_flat_at_openai() -> None:
    part = data_url("image/png", png(4096, 4096))
    part.detail = "low"
    assert image_tokens(part, "openai") == OPENAI_LOW_DETAIL


@pytest.mark.parametrize("part", [
    ImagePart("https://example.com/cat.png"),
    ImagePart("data:image/png;base64,!!!not base64"),
    data_url("image/png", b"not an image at all"),
    data_url("image/png", png(0, 10)),
    data_url("image/jpeg", b"\xff\xd8\xff\xe0\x00"),  # truncated JPEG
])
def test_unknown_sizes_get_the_flat_estimate(part: ImagePart) -> None:
    assert image_size(part) is None
    assert image_tokens(part, "openai") == OPENAI_UNKNOWN
    assert image_tokens(part, "anthropic") == ANTHROPIC_UNKNOWN
    assert image_tokens(part, "gemini") == GEMINI_UNKNOWN
