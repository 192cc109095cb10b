"""Tokens of an image, bounded from above, from the provider's published formula and the size in its header."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

# OpenAI (its vision guide, platform.openai.com/docs/guides/images-vision). Tile-billed models: 85 + 170 per
# 512-px tile; a high-detail image of unknown size covers at most 8 tiles (2048x768): 1,445 on gpt-4o.
# gpt-4o-mini bills images at 2,833 + 5,667 per tile to keep its dollar price equal to gpt-4o's.
# Patch-billed models: 32-px patches, at most 1,536, times the model's multiplier, whatever the detail level.
_OPENAI_IMAGE_TOKENS = 2_700
_OPENAI_LOW_DETAIL_IMAGE_TOKENS = 600
_GPT_4O_MINI_BASE, _GPT_4O_MINI_PER_TILE = 2_833, 5_667
_GPT_4O_MINI_IMAGE_TOKENS = _GPT_4O_MINI_BASE + _GPT_4O_MINI_PER_TILE * 8
_GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS = _GPT_4O_MINI_BASE
_OPENAI_TILE_BASE, _OPENAI_PER_TILE = 85, 170
_OPENAI_MAX_PATCHES = 1_536
# The guide's multipliers (model prefix, multiplier); the first matching prefix wins. gpt-4.1-nano and
# gpt-5-nano reach 1,536 x 2.46 = 3,779 tokens, above the 2,700 allowance of every other model.
_OPENAI_PATCH_MULTIPLIERS: tuple[tuple[str, float], ...] = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
)
# A model not listed: priced by the larger of the tile formula and the patches x 1.72 (o4-mini's), within
# the detail level's allowance.
_OPENAI_DEFAULT_PATCH_MULTIPLIER = 1.72

# Anthropic: images are resized to a long edge of at most 1,568 px and ~1.15 megapixels, then cost
# (width x height) / 750 tokens: ~1,600 at most.
_ANTHROPIC_IMAGE_TOKENS = 1_600
_ANTHROPIC_PIXELS_PER_TOKEN = 750
# Base64 characters decoded to find an image's dimensions (JPEG's size marker can follow EXIF data).
_IMAGE_HEADER_BASE64_CHARS = 256 * 1024


def openai_image_tokens(model: str, detail: Any, size: tuple[int, int] | None) -> int:
    """Tokens of one image on an OpenAI ``model``; ``size`` None when the body does not hold it."""
    if model.startswith("gpt-4o-mini"):
        if detail == "low":
            return _GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS
        if size is None:
            return _GPT_4O_MINI_IMAGE_TOKENS
        return _GPT_4O_MINI_BASE + _GPT_4O_MINI_PER_TILE * _openai_tiles(*size)
    multiplier = _patch_multiplier(model)
    if multiplier is None:
        allowance = _OPENAI_LOW_DETAIL_IMAGE_TOKENS if detail == "low" else _OPENAI_IMAGE_TOKENS
        multiplier = _OPENAI_DEFAULT_PATCH_MULTIPLIER
    else:  # a patch-billed model bills the same patches at every detail level
        allowance = max(_OPENAI_IMAGE_TOKENS, math.ceil(_OPENAI_MAX_PATCHES * multiplier))
    if size is None:
        return allowance
    # Tile-billed and patch-billed models alike: the larger of the two formulas, never above the allowance.
    tiles = _OPENAI_TILE_BASE + _OPENAI_PER_TILE * _openai_tiles(*size)
    width, height = size
    patches = min(-(-width // 32) * -(-height // 32), _OPENAI_MAX_PATCHES)  # downscaling only lowers it
    return min(allowance, max(tiles, math.ceil(patches * multiplier)))


def _patch_multiplier(model: str) -> float | None:
    return next((multiplier for prefix, multiplier in _OPENAI_PATCH_MULTIPLIERS if model.startswith(prefix)), None)


def _openai_tiles(width: int, height: int) -> int:
    """512-px tiles of a high-detail image: scaled to fit 2048 x 2048, then its short side to 768."""
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    return math.ceil(width * scale / 512) * math.ceil(height * scale / 512)


def anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    """Tokens of one image on a Claude model; ``size`` None when the body does not hold it."""
    if size is None:
        return _ANTHROPIC_IMAGE_TOKENS
    width, height = size
    # Resizing only shrinks the image, so its own pixels bound the count; +1 for rounding.
    return min(_ANTHROPIC_IMAGE_TOKENS, width * height // _ANTHROPIC_PIXELS_PER_TOKEN + 1)


def data_url_dimensions(url: Any) -> tuple[int, int] | None:
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, _, data = url.partition(",")
    return base64_dimensions(data) if header.endswith(";base64") else None


def base64_dimensions(data: str) -> tuple[int, int] | None:
    """Width and height from a base64 PNG, GIF, WebP or JPEG header; None when they cannot be read."""
    prefix = data[:_IMAGE_HEADER_BASE64_CHARS]
    try:
        raw = base64.b64decode(prefix[: len(prefix) // 4 * 4], validate=False)
    except (binascii.Error, ValueError):
        return None
    size = _image_dimensions(raw)
    if size is None or min(size) <= 0:
        return None
    return size


def _image_dimensions(raw: bytes) -> tuple[int, int] | None:
    if raw.startswith(b"\x89PNG\r\n\x1a\n") and raw[12:16] == b"IHDR":
        return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    if raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        return int.from_bytes(raw[6:8], "little"), int.from_bytes(raw[8:10], "little")
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return _webp_dimensions(raw)
    if raw[:2] == b"\xff\xd8":
        return _jpeg_dimensions(raw)
    return None


def _webp_dimensions(raw: bytes) -> tuple[int, int] | None:
    chunk = raw[12:16]
    if chunk == b"VP8X" and len(raw) >= 30:
        return 1 + int.from_bytes(raw[24:27], "little"), 1 + int.from_bytes(raw[27:30], "little")
    if chunk == b"VP8 " and len(raw) >= 30 and raw[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(raw[26:28], "little") & 0x3FFF, int.from_bytes(raw[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(raw) >= 25 and raw[20] == 0x2F:
        bits = int.from_bytes(raw[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


# JPEG start-of-frame markers (C4 is DHT, C8 reserved, CC DAC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_dimensions(raw: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(raw):
        if raw[at] != 0xFF:
            return None
        marker = raw[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        length = int.from_bytes(raw[at + 2 : at + 4], "big")
        if marker in _JPEG_SOF:
            if at + 9 > len(raw):
                return None
            return int.from_bytes(raw[at + 7 : at + 9], "big"), int.from_bytes(raw[at + 5 : at + 7], "big")
        if marker == 0xDA or length < 2:  # image data before any frame header: give up
            return None
        at += 2 + length
    return None
