"""Prompt tokens of an image, by each provider's documented formula.

The formulas need the image's size, read from the header of a `data:` URL (PNG, GIF, JPEG,
WebP). An image given by `https://` URL is never fetched: it gets the provider's flat
estimate, stated next to each formula.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Literal

from turnout.core.parts import ImagePart

ImageFamily = Literal["openai", "anthropic", "gemini", "other"]

OPENAI_LOW_DETAIL = 85
"""OpenAI `detail: low`: a fixed 85 tokens whatever the size."""
OPENAI_UNKNOWN = 765
"""OpenAI high detail for an unknown size: a 1024x1024 image (4 tiles: 85 + 4 x 170)."""
ANTHROPIC_UNKNOWN = 1600
"""Anthropic's ceiling: larger images are scaled down to about 1,600 tokens."""
GEMINI_TILE = 258
"""Gemini: an image up to 384x384 is 258 tokens; a larger one is cut into 768x768 tiles of
258 tokens each."""
GEMINI_UNKNOWN = 4 * GEMINI_TILE
"""Gemini for an unknown size: a 1024x1024 image (2x2 tiles)."""

_HEADER_BYTES = 65536
"""Bytes decoded from a data URL to find the size: JPEG puts its frame header after any
EXIF block, which is rarely larger than this."""


def image_tokens(part: ImagePart, family: ImageFamily) -> int:
    """Prompt tokens `part` costs at a provider of `family` (OpenAI's formula for others)."""
    if family == "openai" and part.detail == "low":
        return OPENAI_LOW_DETAIL
    size = image_size(part)
    if family == "anthropic":
        return ANTHROPIC_UNKNOWN if size is None else anthropic_tokens(*size)
    if family == "gemini":
        return GEMINI_UNKNOWN if size is None else gemini_tokens(*size)
    return OPENAI_UNKNOWN if size is None else openai_tokens(*size)


def openai_tokens(width: int, height: int) -> int:
    """OpenAI high detail (GPT-4o, GPT-4.1, GPT-5, o-series): fit within 2048x2048, scale
    the shortest side down to 768, then 170 tokens per 512x512 tile plus 85."""
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def anthropic_tokens(width: int, height: int) -> int:
    """Anthropic: width x height / 750, after scaling down to a long edge of at most 1568
    pixels and about 1.2 megapixels (1,600 tokens; its largest 1:1 size is 1092x1092)."""
    scale = min(1.0, 1568 / max(width, height), math.sqrt(1_200_000 / (width * height)))
    return max(1, math.ceil(width * scale * height * scale / 750))


def gemini_tokens(width: int, height: int) -> int:
    """Gemini 2.x: 258 tokens up to 384x384, else 258 per 768x768 tile."""
    if width <= 384 and height <= 384:
        return GEMINI_TILE
    return GEMINI_TILE * math.ceil(width / 768) * math.ceil(height / 768)


def image_size(part: ImagePart) -> tuple[int, int] | None:
    """(width, height) from a data URL's image header, or None (a remote URL, an unknown
    format, a truncated or malformed header)."""
    if not part.is_data_url:
        return None
    try:
        _, data = part.data_url_parts()
        # Whole base64 quanta only, so a cut-off prefix still decodes.
        head = base64.b64decode(data[: _HEADER_BYTES // 3 * 4], validate=False)
    except (ValueError, binascii.Error):
        return None
    try:
        size = _png(head) or _gif(head) or _webp(head) or _jpeg(head)
    except struct.error:
        return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _gif(head: bytes) -> tuple[int, int] | None:
    if head[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    width, height = struct.unpack("<HH", head[6:10])
    return width, height


def _webp(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14-bit sizes minus one, bit-packed
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit sizes minus one
        return (int.from_bytes(head[24:27], "little") + 1,
                int.from_bytes(head[27:30], "little") + 1)
    return None


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""JPEG start-of-frame markers (0xC4, 0xC8 and 0xCC are other segments)."""


def _jpeg(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    offset = 2
    while offset + 4 <= len(head):
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        (length,) = struct.unpack(">H", head[offset + 2:offset + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", head[offset + 5:offset + 9])
            return width, height
        offset += 2 + length
    return None
