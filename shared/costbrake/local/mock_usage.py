"""What the mock provider bills for a request's input: text, images, documents, search results, cache.

Text is counted by a pluggable ``count_tokens(dialect, text)`` (default: ceil(characters / 4)). Everything
else is billed the way the providers document it, independently of costbrake's own estimator:

- **messages**: ``MESSAGE_OVERHEAD_TOKENS`` per message (and per Anthropic system prompt) plus its parts;
  fields other than the content (tool calls, names, ids) count as their JSON text; tools count as their JSON
  text; ``REPLY_PRIMING_TOKENS`` per request;
- **images** (sized from the PNG / GIF / JPEG / WebP header of inline data): Anthropic ceil(w x h / 750)
  after scaling to a long edge <= 1,568 px and <= ``ANTHROPIC_IMAGE_MAX_TOKENS``; OpenAI tiles (fit in
  2048 x 2048, shortest side <= 768, base + per-512-px-tile tokens per model; low detail = base), or 32-px
  patches for the patch-billed models. An image whose size is unknown (a URL) bills the model's maximum;
- **PDF documents** (Anthropic ``document``, OpenAI ``file``): ``PDF_PAGE_TOKENS`` per page, the upper end
  of Anthropic's documented 1,500-3,000 tokens per page (text plus the page image), pages counted as
  ``/Type /Page`` (not ``/Pages``) in the decoded bytes, at least 1; a document the mock cannot read (URL,
  file id) bills ``UNKNOWN_DOCUMENT_PAGES`` pages. Plain-text documents count as their text;
- **web search**: ``WEB_SEARCH_RESULT_TOKENS`` input tokens per search performed (added by the caller).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TokenCounter = Callable[[str, str], int]  # (dialect, text) -> tokens

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMING_TOKENS = 3
ANTHROPIC_IMAGE_MAX_TOKENS = 1_600
PDF_PAGE_TOKENS = 3_000
UNKNOWN_DOCUMENT_PAGES = 20
WEB_SEARCH_RESULT_TOKENS = 2_500
ANTHROPIC_CACHE_MIN_TOKENS = 1_024  # the smallest cacheable prefix (1,024-4,096 by model; the mock uses 1,024)
OPENAI_CACHE_MIN_TOKENS = 1_024
OPENAI_CACHE_INCREMENT = 128

_PAGE = re.compile(rb"/Type\s*/Page(?!s)")
_DATA_URL = re.compile(r"^data:[^;,]*(?:;[^,]*)?;base64,(.*)$", re.DOTALL)
# OpenAI tile-billed models: (base tokens, tokens per 512-px tile); the first matching prefix wins.
_OPENAI_TILES: tuple[tuple[str, int, int], ...] = (
    ("gpt-4o-mini", 2_833, 5_667),
    ("o1", 75, 150),
    ("o3", 75, 150),
)
_OPENAI_DEFAULT_TILES = (85, 170)
# OpenAI patch-billed models: 32-px patches capped at 1,536, times a multiplier.
_OPENAI_PATCHES: tuple[tuple[str, float], ...] = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-5-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
)


def chars_per_token(_dialect: str, text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Segment:
    """One billable piece of the prompt, in order; ``ttl`` when a cache breakpoint ends here."""

    tokens: int
    key: str
    ttl: str | None = None


@dataclass(frozen=True)
class PromptInput:
    segments: tuple[Segment, ...]
    texts: tuple[str, ...]  # the message texts, for the deterministic output seed

    @property
    def tokens(self) -> int:
        return sum(segment.tokens for segment in self.segments) + REPLY_PRIMING_TOKENS


def openai_input(body: Mapping[str, Any], count: TokenCounter) -> PromptInput:
    model = str(body.get("model") or "")
    segments: list[Segment] = []
    if body.get("tools"):
        tools = _dumps(body["tools"])
        segments.append(Segment(count("openai", tools), tools))
    texts = []
    for message in body.get("messages") or ():
        text, extra = _openai_message(message, model)
        texts.append(text)
        segments.append(Segment(MESSAGE_OVERHEAD_TOKENS + count("openai", text) + extra, _dumps(message)))
    return PromptInput(tuple(segments), tuple(texts))


def anthropic_input(body: Mapping[str, Any], count: TokenCounter) -> PromptInput:
    segments: list[Segment] = []
    for tool in body.get("tools") or ():
        segments.append(_block_segment(tool, count, overhead=0, text=_dumps(_without_cache_control(tool))))
    texts: list[str] = []
    for content in ([body["system"]] if body.get("system") else []) + [
        message.get("content") if isinstance(message, Mapping) else message for message in body.get("messages") or ()
    ]:
        blocks = content if isinstance(content, list) and content else [content]
        texts.append("".join(_anthropic_text(block) for block in blocks))
        for index, block in enumerate(blocks):
            overhead = MESSAGE_OVERHEAD_TOKENS if index == 0 else 0
            segments.append(_block_segment(block, count, overhead=overhead))
    automatic = body.get("cache_control")
    if isinstance(automatic, Mapping) and segments and not any(segment.ttl for segment in segments):
        last = segments[-1]
        segments[-1] = Segment(last.tokens, last.key, str(automatic.get("ttl") or "5m"))
    return PromptInput(tuple(segments), tuple(texts))


def _block_segment(block: Any, count: TokenCounter, *, overhead: int, text: str | None = None) -> Segment:
    ttl = None
    if isinstance(block, Mapping) and isinstance(block.get("cache_control"), Mapping):
        ttl = str(block["cache_control"].get("ttl") or "5m")
    tokens = overhead + _anthropic_block_tokens(block, count) if text is None else overhead + count("anthropic", text)
    return Segment(tokens, _dumps(_without_cache_control(block)), ttl)


def _anthropic_block_tokens(block: Any, count: TokenCounter) -> int:
    if not isinstance(block, Mapping):
        return count("anthropic", block if isinstance(block, str) else _dumps(block))
    kind, source = block.get("type"), block.get("source")
    if kind == "text" and isinstance(block.get("text"), str):
        return count("anthropic", block["text"])
    if kind == "image":
        size = image_size(_base64(source.get("data")) if isinstance(source, Mapping) else None)
        return anthropic_image_tokens(size)
    if kind == "document" and isinstance(source, Mapping):
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return count("anthropic", source["data"])
        if source.get("type") == "base64":
            return PDF_PAGE_TOKENS * pdf_pages(_base64(source.get("data")))
        if source.get("type") == "content":
            return count("anthropic", _dumps(source.get("content")))
        return PDF_PAGE_TOKENS * UNKNOWN_DOCUMENT_PAGES
    return count("anthropic", _dumps(_without_cache_control(block)))


def _anthropic_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return _dumps(block)


def _openai_message(message: Any, model: str) -> tuple[str, int]:
    """The message's text (counted by the tokenizer) and the tokens of its non-text parts."""
    if not isinstance(message, Mapping):
        return _dumps(message), 0
    others = {key: value for key, value in message.items() if key not in ("role", "content")}
    content = message.get("content")
    text, extra = "", 0
    for part in content if isinstance(content, list) else [content]:
        if part is None:
            continue
        if isinstance(part, str):
            text += part
        elif isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
            text += part["text"]
        elif (
            isinstance(part, Mapping) and part.get("type") == "image_url" and isinstance(part.get("image_url"), Mapping)
        ):
            image = part["image_url"]
            data = _DATA_URL.match(str(image.get("url") or ""))
            size = image_size(_base64(data.group(1)) if data else None)
            extra += openai_image_tokens(model, size, detail=str(image.get("detail") or "auto"))
        elif isinstance(part, Mapping) and part.get("type") == "file" and isinstance(part.get("file"), Mapping):
            data = _DATA_URL.match(str(part["file"].get("file_data") or ""))
            pages = pdf_pages(_base64(data.group(1))) if data else UNKNOWN_DOCUMENT_PAGES
            extra += PDF_PAGE_TOKENS * pages
        else:
            text += _dumps(part)
    return text + (_dumps(others) if others else ""), extra


# --- images and documents ---


def anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    if size is None:
        return ANTHROPIC_IMAGE_MAX_TOKENS
    width, height = size
    scale = min(1.0, 1568 / max(width, height), math.sqrt(ANTHROPIC_IMAGE_MAX_TOKENS * 750 / (width * height)))
    return max(1, min(ANTHROPIC_IMAGE_MAX_TOKENS, math.ceil(width * scale * height * scale / 750)))


def openai_image_tokens(model: str, size: tuple[int, int] | None, *, detail: str = "auto") -> int:
    for prefix, multiplier in _OPENAI_PATCHES:
        if model.startswith(prefix):
            width, height = size or (2048, 2048)
            patches = min(1536, math.ceil(width / 32) * math.ceil(height / 32))
            return math.ceil(patches * multiplier)
    base, per_tile = next(((b, t) for prefix, b, t in _OPENAI_TILES if model.startswith(prefix)), _OPENAI_DEFAULT_TILES)
    if detail == "low":
        return base
    width, height = size or (2048, 768)  # unknown: the most tiles an image can take (8)
    fit = min(1.0, 2048 / max(width, height))
    shrink = fit * min(1.0, 768 / (min(width, height) * fit))
    tiles = math.ceil(width * shrink / 512) * math.ceil(height * shrink / 512)
    return base + per_tile * tiles


def image_size(data: bytes | None) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, WebP or JPEG header; None when unknown."""
    if not data:
        return None
    size: tuple[int, int] | None = None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        size = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        size = _webp_size(data)
    elif data[:2] == b"\xff\xd8":
        size = _jpeg_size(data)
    return size if size and size[0] > 0 and size[1] > 0 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 <= len(data):
        if data[index] != 0xFF:
            index += 1
            continue
        marker = data[index + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        index += 2 + struct.unpack(">H", data[index + 2 : index + 4])[0]
    return None


def pdf_pages(data: bytes | None) -> int:
    return max(1, len(_PAGE.findall(data or b"")))


def _base64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


# --- prompt caching ---


@dataclass(frozen=True)
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


class PromptCache:
    """Seen prompt prefixes (thread-safe, never expiring): what a repeat reads and a first request writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def anthropic(self, model: str, prompt: PromptInput) -> CacheUsage:
        """Anthropic: reads the longest cached breakpoint prefix, writes the rest up to the last breakpoint.

        Each written span is billed at the TTL of the breakpoint that ends it.
        """
        breakpoints = _prefixes(model, prompt.segments, lambda segment: segment.ttl is not None)
        breakpoints = [point for point in breakpoints if point[1] >= ANTHROPIC_CACHE_MIN_TOKENS]
        if not breakpoints:
            return CacheUsage()
        with self._lock:
            hits = [index for index, (key, _tokens, _ttl) in enumerate(breakpoints) if key in self._seen]
            self._seen.update(key for key, _tokens, _ttl in breakpoints)
        first = hits[-1] + 1 if hits else 0
        read = breakpoints[hits[-1]][1] if hits else 0
        writes = {"5m": 0, "1h": 0}
        start = read
        for _key, tokens, ttl in breakpoints[first:]:
            writes["1h" if ttl == "1h" else "5m"] += tokens - start
            start = tokens
        return CacheUsage(read, writes["5m"], writes["1h"])

    def openai(self, model: str, prompt: PromptInput) -> int:
        """OpenAI: cached tokens of the longest repeated prefix of >= 1,024 tokens, in 128-token steps."""
        prefixes = _prefixes(model, prompt.segments, lambda _segment: True)
        with self._lock:
            hits = [tokens for key, tokens, _ttl in prefixes if key in self._seen]
            self._seen.update(key for key, tokens, _ttl in prefixes if tokens >= OPENAI_CACHE_MIN_TOKENS)
        cached = max(hits, default=0)
        return cached - cached % OPENAI_CACHE_INCREMENT if cached >= OPENAI_CACHE_MIN_TOKENS else 0


def _prefixes(
    model: str, segments: tuple[Segment, ...], ends: Callable[[Segment], bool]
) -> list[tuple[str, int, str | None]]:
    """(prefix key, tokens up to and including the segment, its ttl) for each segment ``ends`` selects."""
    digest = hashlib.sha256(model.encode("utf-8"))
    total, found = 0, []
    for segment in segments:
        digest.update(segment.key.encode("utf-8", "surrogatepass") + b"\x00")
        total += segment.tokens
        if ends(segment):
            found.append((digest.copy().hexdigest(), total, segment.ttl))
    return found


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: item for key, item in value.items() if key != "cache_control"}
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
