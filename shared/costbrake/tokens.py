"""Offline input-token bounds, for reserving a call's worst-case cost before the call.

No tokenizer ships here (tiktoken downloads its tables at run time; Anthropic publishes none for its
current models). The text is cut into pieces the way the BPE pre-tokenizers cut it, and each piece is
priced by what is PROVEN or, for a few ordinary kinds of ASCII text, by what was MEASURED; everything
else is counted per UTF-8 byte.

Proven, for the byte-level BPE tokenizers o200k_base, cl100k_base and Anthropic's published (legacy)
Claude tokenizer:

1. Bytes. Every token is at least one byte (o200k/cl100k: of the UTF-8 text; Claude: of its NFKC form,
   which can be longer: U+FDFA is 3 bytes, 33 after NFKC), so the byte count bounds the token count.
   Every piece not recognised below costs its bytes: control characters, ``\r \v \f \x1c-\x1f``,
   every non-ASCII character. No estimate exceeds the whole text's bytes (for ``anthropic`` the larger
   of the UTF-8 and NFKC byte counts).
2. Pairs. An ASCII letter or punctuation piece whose every adjacent pair of characters is a token in all
   three tokenizers (``bigrams`` in ``data/token_words.json``) takes at most (2n + 1) / 3 tokens for n
   characters: BPE stops only when no two adjacent tokens merge, so no two one-character tokens are
   adjacent inside the piece and every other token covers two or more characters. A pair that is not a
   token cuts the piece into parts bounded one by one; several such pieces (and byte-priced ones) in one
   pre-token take at most the sum of their bounds. Pieces follow the pre-tokenizers' cuts (case changes,
   digits, whitespace, the one character o200k/cl100k put in front of a word).
3. Digits. Every 1-3 digit string is one token in o200k_base and cl100k_base, which pre-tokenize digits
   in groups of three; Claude's tokenizer merges every digit pair, so rule 2 bounds its digit runs.

Calibrated (measured, not proven; checked by the corpus tests and by property tests over arbitrary
Unicode against all three tokenizers), times a 5 % safety factor: a word that is one token in all three
(``words``, ``spaced``, ``bare``: checked exactly as written, with or without its leading space) costs
one, also after a character o200k/cl100k put in its pre-token unless that pair was measured above two
tokens (``joined``); a punctuation run that is one token in all three (``punctuation``) costs one; a
run of n of one whitespace character costs 0.94 + n/16 (spaces) or 0.875 + n/8 (newlines, tabs),
checked for every n up to 2,048, the last space or tab before other text counting as a byte.

Profiles: ``openai`` bounds o200k_base (every priced OpenAI model) and cl100k_base. ``anthropic``
bounds the legacy Claude tokenizer and, outside byte-priced text, 1.3 x o200k_base, the upper end of
what Claude 3+ tokenizers were measured to produce relative to GPT-4o on natural text (calibrated pieces
x 1.25 x 1.05; rules 2 and 3 x 1.3, never above the bytes). On byte-priced text it relies on rule 1: a
newer Claude tokenizer that is byte-level, as every published one is, cannot exceed the bytes. Without a
provider the larger of the two is returned.

Outside the bound: a tokenizer that is not byte-level BPE; context effects on calibrated pieces beyond
what the property tests explore; Unicode versions newer than the pre-tokenizer's (they only move
pre-token cuts, which rule 1 does not depend on).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from costbrake.errors import InvalidRequest

# --- text -------------------------------------------------------------------------------------------------

# One alternative per kind of piece, in the order the pre-tokenizers cut text; together they cover
# every character, so nothing is ever priced at zero.
_PIECE = re.compile(
    r"( ?)(?:([A-Z]*[a-z]+|[A-Z]+)|([!-/:-@\[-`{-~]+))"  # a word or punctuation run, with the space it takes
    r"|([0-9]+)"
    r"|( +?(?= [!-~])| +|\n+|\t+)"  # a run of one whitespace character, leaving a word its space
    r"|([\x00-\x08\x0b-\x1f\x7f]+)"  # control characters, \r \v \f \x1c-\x1f: per byte
    r"|([^\x00-\x7f]+)"  # anything non-ASCII: per byte
)
_WORD, _PUNCTUATION, _DIGITS, _WHITESPACE, _ASCII_OTHER, _NON_ASCII = 2, 3, 4, 5, 6, 7
_SAFETY_FACTOR = 1.05
# Calibrated: tokens of a run of n of one whitespace character, at most c + n / k in all three tokenizers
# (checked for every n up to 2,048): (c, k).
_WHITESPACE_RUN = {" ": (0.9375, 16), "\n": (0.875, 8), "\t": (0.875, 8)}


@dataclass(frozen=True)
class _Profile:
    calibrated_weight: float  # per calibrated token (known word, punctuation token, whitespace run)
    bigram_weight: float  # on the rule-2 bound (2n + 1) / 3, never above n
    digit_group: float  # per group of up to three digits
    nfkc: bool  # the tokenizer normalises to NFKC: bytes are counted after NFKC too


_PROFILES: dict[str, _Profile] = {
    "openai": _Profile(calibrated_weight=1.0, bigram_weight=1.0, digit_group=1.0, nfkc=False),
    # 1.25 x 1.05 safety >= 1.3 x o200k on calibrated pieces; 1.3 x o200k's bound on the proven ones.
    "anthropic": _Profile(calibrated_weight=1.25, bigram_weight=1.3, digit_group=1.3, nfkc=True),
}
PROVIDERS = tuple(_PROFILES)


@dataclass(frozen=True)
class _WordData:
    known: frozenset[str]  # exact pieces (with their leading space, if any) that are one token
    bigrams: frozenset[str]
    joined_exceptions: frozenset[str]  # character + known word that take more than two tokens


@cache
def _word_data() -> _WordData:
    # Loaded on first use, not at import: the gateway's cold start does not pay for it (~10 ms).
    raw = json.loads((Path(__file__).parent / "data" / "token_words.json").read_text(encoding="utf-8"))
    spaced = [" " + word for word in (*raw["words"].split(), *raw["spaced"].split())]
    bigrams = raw["bigrams"]
    return _WordData(
        known=frozenset((*spaced, *raw["bare"].split(), *raw["punctuation"])),
        bigrams=frozenset(bigrams[i : i + 2] for i in range(0, len(bigrams), 2)),
        joined_exceptions=frozenset(char + word for char, words in raw["joined"].items() for word in words.split()),
    )


@lru_cache(maxsize=32_768)
def _ascii_piece(piece: str) -> tuple[float, float]:
    """A word or punctuation piece with its leading space: (0, 0) if it is one token (calibrated), else
    its rule-2 bounds for the openai and anthropic profiles. A pair of characters that is not a token
    cuts the piece in two, each part bounded on its own (at worst one token per character)."""
    data = _word_data()
    if piece in data.known or len(piece.lstrip(" ")) == 1:  # every ASCII character, spaced or not, is a token
        return 0.0, 0.0
    return _ascii_bound(piece)


@lru_cache(maxsize=32_768)
def _ascii_bound(piece: str) -> tuple[float, float]:
    bigrams = _word_data().bigrams
    openai = anthropic = 0.0
    start = 0
    for end in range(1, len(piece) + 1):
        if end == len(piece) or piece[end - 1 : end + 1] not in bigrams:
            chars = end - start
            bound = (2 * chars + 1) / 3
            openai += bound
            anthropic += min(_PROFILES["anthropic"].bigram_weight * bound, chars)
            start = end
    return openai, anthropic


@dataclass
class _Measure:
    """What the text is made of, in the sums each profile prices (one pass serves both profiles)."""

    calibrated: float = 0.0  # calibrated tokens
    bigram_openai: float = 0.0  # rule 2, per profile
    bigram_anthropic: float = 0.0
    digit_groups: int = 0  # rule 3
    digit_chars: int = 0
    digit_runs: int = 0
    bytes: int = 0  # rule 1
    nfkc_extra: int = 0  # bytes NFKC adds to byte-priced runs

    def tokens(self, profile: _Profile) -> float:
        calibrated = self.calibrated * profile.calibrated_weight * _SAFETY_FACTOR
        if profile.nfkc:
            # Digits: 1.3 x o200k's groups, and rule 2 for Claude's own digit merges.
            digits = max(profile.digit_group * self.digit_groups, (2 * self.digit_chars + self.digit_runs) / 3)
            return calibrated + self.bigram_anthropic + digits + self.bytes + self.nfkc_extra
        return calibrated + self.bigram_openai + self.digit_groups + self.bytes


def _measure(text: str) -> _Measure:
    measure = _Measure()
    calibrated = 0.0
    # o200k_base and cl100k_base put one character (not a letter, digit or line break) before a word in
    # the word's pre-token, where BPE may merge it with the word's first letters: such a known word still
    # counts one (the character counts one on its own) only if the pair was checked to take at most two
    # tokens; otherwise only rule 2 bounds it.
    joiner = ""
    for match in _PIECE.finditer(text):
        kind = match.lastindex
        if kind in (_WORD, _PUNCTUATION):
            piece = match.group()
            openai, anthropic = _ascii_piece(piece)
            if not openai and joiner and kind == _WORD and piece[0] != " " and _joined_unknown(joiner, piece):
                openai, anthropic = _ascii_bound(piece)
            if openai:
                measure.bigram_openai += openai
                measure.bigram_anthropic += anthropic
            else:
                calibrated += 1
            joiner = piece if kind == _PUNCTUATION and len(piece) == 1 else ""
            continue
        if kind == _DIGITS:
            digits = match.end() - match.start()
            measure.digit_chars += digits
            measure.digit_runs += 1
            measure.digit_groups += -(-digits // 3)
        elif kind == _WHITESPACE:
            run = match.group()
            size = len(run)
            if size > 1 and run[0] != "\n" and match.end() < len(text) and text[match.end()] not in " \n":
                # The pre-tokenizers give the last space or tab to what follows: it is a pre-token's first byte.
                size -= 1
                measure.bytes += 1
            constant, chars_per_token = _WHITESPACE_RUN[run[0]]
            calibrated += constant + size / chars_per_token
        elif kind == _ASCII_OTHER:
            measure.bytes += match.end() - match.start()
        else:
            run = match.group()
            size = len(run.encode("utf-8"))
            measure.bytes += size
            if not unicodedata.is_normalized("NFKC", run):
                measure.nfkc_extra += max(0, _nfkc_bytes(run) - size)
        joiner = text[match.end() - 1] if kind != _DIGITS and text[match.end() - 1] not in " \n" else ""
    measure.calibrated = calibrated
    return measure


def _joined_unknown(joiner: str, word: str) -> bool:
    return not joiner.isascii() or joiner + word in _word_data().joined_exceptions


def _nfkc_bytes(text: str) -> int:
    return len(unicodedata.normalize("NFKC", text).encode("utf-8"))


def estimate_text_tokens(text: str, *, provider: str | None = None) -> int:
    """At least as many tokens as ``text`` takes for ``provider`` ("openai" or "anthropic"); for no
    provider, at least as many as for either."""
    if not text:
        return 0
    if provider is None:
        profiles = tuple(_PROFILES.values())
    else:
        try:
            profiles = (_PROFILES[provider],)
        except KeyError:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}") from None
    measure = _measure(text)
    size = len(text.encode("utf-8"))
    estimate = 1  # non-empty text is at least one token
    for profile in profiles:
        byte_bound = size
        if profile.nfkc and measure.nfkc_extra:
            byte_bound = max(size, _nfkc_bytes(text))
        estimate = max(estimate, min(math.ceil(measure.tokens(profile)), byte_bound))
    return estimate


# --- request bodies ---------------------------------------------------------------------------------------

# OpenAI's published accounting: 3 tokens frame each message, 1 more for a name, 3 prime the reply.
# Kept one higher per message for the roles and separators newer formats add.
_OPENAI_TOKENS_PER_MESSAGE = 4
_OPENAI_TOKENS_PER_NAME = 1
_OPENAI_REPLY_PRIMING = 3
_OPENAI_TOKENS_PER_TOOL = 12  # the namespace/type wrapper each function definition is rendered into
_OPENAI_TOOLS_PREAMBLE = 20
_OPENAI_TOKENS_PER_TOOL_CALL = 10
_OPENAI_RESPONSE_FORMAT_OVERHEAD = 20
# Images of unknown size: high detail covers at most 8 tiles (2048x768): 85 + 8 x 170 = 1,445 on
# gpt-4o; patch-billed models cap at 1,536 patches x 1.62 (gpt-4.1-mini, gpt-5-mini) or x 1.72 (o4-mini)
# = 2,642. gpt-4o-mini bills images at 2,833 + 5,667 per tile to keep its dollar price equal to gpt-4o's.
_OPENAI_IMAGE_TOKENS = 2_700
_OPENAI_LOW_DETAIL_IMAGE_TOKENS = 600
_GPT_4O_MINI_BASE, _GPT_4O_MINI_PER_TILE = 2_833, 5_667
_GPT_4O_MINI_IMAGE_TOKENS = _GPT_4O_MINI_BASE + _GPT_4O_MINI_PER_TILE * 8
_GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS = _GPT_4O_MINI_BASE
_OPENAI_TILE_BASE, _OPENAI_PER_TILE = 85, 170
_OPENAI_MAX_PATCHES, _OPENAI_MAX_PATCH_MULTIPLIER = 1_536, 1.72

# Anthropic: images are resized to a long edge of at most 1,568 px and ~1.15 megapixels, then cost
# (width x height) / 750 tokens: ~1,600 at most.
_ANTHROPIC_IMAGE_TOKENS = 1_600
_ANTHROPIC_PIXELS_PER_TOKEN = 750
_ANTHROPIC_TOKENS_PER_MESSAGE = 5
_ANTHROPIC_REQUEST_OVERHEAD = 10
_ANTHROPIC_TOKENS_PER_TOOL = 12
# The tool-use system prompt Anthropic adds when tools are present (346 tokens on Claude 4 models), and
# what an Anthropic-defined tool (bash 245, text editor 700, computer use 735 + its system prompt) adds.
_ANTHROPIC_TOOL_SYSTEM_PROMPT = 400
_ANTHROPIC_SERVER_TOOL_TOKENS = 1_500
_ANTHROPIC_TOKENS_PER_BLOCK = 3
# Base64 characters decoded to find an image's dimensions (JPEG's size marker can follow EXIF data).
_IMAGE_HEADER_BASE64_CHARS = 256 * 1024


class UnsizableInput(InvalidRequest):
    """Content that cannot be sent inline and whose size cannot be known before the call (a file stored at
    the provider, a remote PDF), refused because no worst case can be reserved for it."""

    code = "unsizable_input"


@dataclass(frozen=True)
class InputEstimate:
    """The input tokens of a request body, bounded from above.

    ``tokens`` bounds every part that can be sized from the body. ``unsized`` names each part whose
    tokens are not a function of its bytes (a base64 PDF is ~1.5-3k tokens a page whatever its size;
    audio; content types this module does not know), in body order: when it is non-empty the only sound
    input bound is the model's context window, which the provider refuses to exceed.
    """

    tokens: int
    unsized: tuple[str, ...] = ()

    def bound(self, context_window: int) -> int:
        """The input bound to reserve: ``tokens``, or the context window when a part is unsized."""
        return max(self.tokens, context_window) if self.unsized else self.tokens


@dataclass
class _Parts:
    """What a request body is made of, collected as it is walked."""

    texts: list[str]
    fixed: int = 0  # tokens of parts priced as a whole (framing, images)
    unsized: list[str] | None = None

    def add_unsized(self, kind: str) -> None:
        if self.unsized is None:
            self.unsized = []
        self.unsized.append(kind)

    def estimate(self, provider: str) -> InputEstimate:
        tokens = estimate_text_tokens("\n".join(self.texts), provider=provider) + self.fixed
        return InputEstimate(tokens=tokens, unsized=tuple(self.unsized or ()))


def estimate_openai_input_tokens(body: Mapping[str, Any]) -> InputEstimate:
    """Input tokens of a chat.completions request body, bounded from above."""
    parts = _Parts(texts=[], fixed=_OPENAI_REPLY_PRIMING)
    model = str(body.get("model") or "")
    for message in _as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            parts.texts.append(_json_text(message))
            continue
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(str(message.get("role") or ""))
        if message.get("name"):
            parts.fixed += _OPENAI_TOKENS_PER_NAME
            parts.texts.append(str(message["name"]))
        _openai_content(message.get("content"), model, parts)
        for key in ("refusal", "tool_call_id"):
            if isinstance(message.get(key), str):
                parts.texts.append(message[key])
        calls = _as_list(message.get("tool_calls"))
        if isinstance(message.get("function_call"), Mapping):
            calls.append({"function": message["function_call"]})
        for call in calls:
            # The whole call as JSON (id, type, name, arguments, punctuation): how it is rendered is not
            # published, and every part of it can reach the model as tokens.
            parts.fixed += _OPENAI_TOKENS_PER_TOOL_CALL
            parts.texts.append(_json_text(call))
        if message.get("audio") is not None:  # a reference to an earlier audio reply: audio tokens
            parts.add_unsized("audio")
    tools = _as_list(body.get("tools")) + _as_list(body.get("functions"))
    if tools:
        parts.fixed += _OPENAI_TOOLS_PREAMBLE + _OPENAI_TOKENS_PER_TOOL * len(tools)
        parts.texts.extend(_json_text(tool) for tool in tools)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") != "text":
        parts.fixed += _OPENAI_RESPONSE_FORMAT_OVERHEAD
        parts.texts.append(_json_text(response_format))
    if isinstance(body.get("tool_choice"), Mapping):
        parts.texts.append(_json_text(body["tool_choice"]))
    return parts.estimate("openai")


def _openai_content(content: Any, model: str, parts: _Parts) -> None:
    if content is None:
        return
    if isinstance(content, str):
        parts.texts.append(content)
        return
    for part in _as_list(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            parts.texts.append(part["refusal"])
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else None
            url = image.get("url") if isinstance(image, Mapping) else None
            parts.fixed += _openai_image_tokens(model, detail, _data_url_dimensions(url))
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, Mapping) or not isinstance(file.get("file_data"), str):
                raise UnsizableInput("a file referenced by id cannot be sized before the call; send file_data")
            parts.add_unsized("file")  # a PDF's tokens (text + an image per page) are not its bytes
        elif kind == "input_audio":
            parts.add_unsized("input_audio")
        else:
            parts.texts.append(_json_text(part))
            parts.add_unsized(str(kind or "unknown"))


def _openai_image_tokens(model: str, detail: Any, size: tuple[int, int] | None) -> int:
    if model.startswith("gpt-4o-mini"):
        if detail == "low":
            return _GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS
        if size is None:
            return _GPT_4O_MINI_IMAGE_TOKENS
        return _GPT_4O_MINI_BASE + _GPT_4O_MINI_PER_TILE * _openai_tiles(*size)
    allowance = _OPENAI_LOW_DETAIL_IMAGE_TOKENS if detail == "low" else _OPENAI_IMAGE_TOKENS
    if size is None:
        return allowance
    # Tile-billed and patch-billed models alike: the larger of the two formulas, never above the allowance.
    tiles = _OPENAI_TILE_BASE + _OPENAI_PER_TILE * _openai_tiles(*size)
    width, height = size
    patches = min(-(-width // 32) * -(-height // 32), _OPENAI_MAX_PATCHES)  # downscaling only lowers it
    return min(allowance, max(tiles, math.ceil(patches * _OPENAI_MAX_PATCH_MULTIPLIER)))


def _openai_tiles(width: int, height: int) -> int:
    """512-px tiles of a high-detail image: scaled to fit 2048 x 2048, then its short side to 768."""
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    return math.ceil(width * scale / 512) * math.ceil(height * scale / 512)


# Responses API: request fields that bring in context the body does not hold, and input item types whose
# tokens are their text (JSON); every other item type (reasoning, item references, built-in tool calls) is
# unsized.
_RESPONSES_CONTEXT = (
    ("previous_response_id", "previous response"),
    ("conversation", "conversation"),
    ("prompt", "prompt template"),
)
_RESPONSES_TEXT_ITEMS = frozenset({"custom_tool_call", "custom_tool_call_output"})
_RESPONSES_TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}
_RESPONSES_IMAGE_DETAILS = frozenset({None, "auto", "low", "high"})


def estimate_openai_responses_input_tokens(body: Mapping[str, Any]) -> InputEstimate:
    """Input tokens of a Responses API request body, bounded from above: ``instructions``, ``input`` (text or
    items), ``tools``, ``text.format`` and ``tool_choice``. Context the body only refers to (a previous response,
    a conversation, a stored prompt template, item references, reasoning items) is unsized."""
    parts = _Parts(texts=[], fixed=_OPENAI_REPLY_PRIMING)
    model = str(body.get("model") or "")
    for field, kind in _RESPONSES_CONTEXT:
        if body.get(field) not in (None, ""):
            parts.add_unsized(kind)
    if isinstance(body.get("instructions"), str):
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(body["instructions"])
    items = body.get("input")
    for item in [{"role": "user", "content": items}] if isinstance(items, str) else _as_list(items):
        _responses_item(item, model, parts)
    tools = _as_list(body.get("tools"))
    if tools:
        parts.fixed += _OPENAI_TOOLS_PREAMBLE + _OPENAI_TOKENS_PER_TOOL * len(tools)
        parts.texts.extend(_json_text(tool) for tool in tools)
    text = body.get("text")
    response_format = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(response_format, Mapping) and response_format.get("type") != "text":
        parts.fixed += _OPENAI_RESPONSE_FORMAT_OVERHEAD
        parts.texts.append(_json_text(response_format))
    if isinstance(body.get("tool_choice"), Mapping):
        parts.texts.append(_json_text(body["tool_choice"]))
    return parts.estimate("openai")


def _responses_item(item: Any, model: str, parts: _Parts) -> None:
    if not isinstance(item, Mapping):
        parts.texts.append(_json_text(item))
        return
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(str(item.get("role") or ""))
        _responses_content(item.get("content"), model, parts)
    elif kind == "function_call":
        parts.fixed += _OPENAI_TOKENS_PER_TOOL_CALL
        parts.texts.extend(str(item.get(field) or "") for field in ("call_id", "name", "arguments"))
    elif kind == "function_call_output":
        parts.fixed += _OPENAI_TOKENS_PER_MESSAGE
        parts.texts.append(str(item.get("call_id") or ""))
        _responses_content(item.get("output"), model, parts)
    elif kind in _RESPONSES_TEXT_ITEMS:
        parts.fixed += _OPENAI_TOKENS_PER_TOOL_CALL
        parts.texts.append(_json_text(item))
    else:  # reasoning (its tokens are not its encrypted bytes), item_reference, built-in tool calls, unknown
        parts.texts.append(_json_text(item))
        parts.add_unsized(str(kind or "unknown").replace("_", " "))


def _responses_content(content: Any, model: str, parts: _Parts) -> None:
    if isinstance(content, str):
        parts.texts.append(content)
        return
    for part in _as_list(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        field = _RESPONSES_TEXT_PARTS.get(str(kind))
        if field is not None and isinstance(part.get(field), str):
            parts.texts.append(part[field])
        elif kind == "input_image" and part.get("detail") in _RESPONSES_IMAGE_DETAILS:
            # A file_id or remote URL has no size here: the detail level's largest image.
            parts.fixed += _openai_image_tokens(model, part.get("detail"), _data_url_dimensions(part.get("image_url")))
        elif kind == "input_file":
            parts.add_unsized("file")  # a PDF's tokens (text + an image per page) are not its bytes
        else:
            parts.texts.append(_json_text(part))
            parts.add_unsized(str(kind or "unknown").replace("_", " "))


def estimate_embeddings_input_tokens(value: Any) -> int:
    """Tokens of an embeddings ``input``, bounded from above: each string on its own (each is tokenized on its
    own), token arrays counted exactly."""
    if isinstance(value, str):
        return estimate_text_tokens(value, provider="openai")
    items = _as_list(value)
    if all(isinstance(item, int) for item in items):
        return len(items)
    total = 0
    for item in items:
        if isinstance(item, str):
            total += estimate_text_tokens(item, provider="openai")
        elif isinstance(item, list):
            total += len(item)
        else:
            total += len(_json_text(item).encode("utf-8"))
    return total


def estimate_anthropic_input_tokens(body: Mapping[str, Any]) -> InputEstimate:
    """Input tokens of a Messages request body, bounded from above."""
    parts = _Parts(texts=[], fixed=_ANTHROPIC_REQUEST_OVERHEAD)
    _anthropic_content(body.get("system"), parts)
    for message in _as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            parts.texts.append(_json_text(message))
            continue
        parts.fixed += _ANTHROPIC_TOKENS_PER_MESSAGE
        _anthropic_content(message.get("content"), parts)
    tools = _as_list(body.get("tools"))
    if tools:
        parts.fixed += _ANTHROPIC_TOOL_SYSTEM_PROMPT + _ANTHROPIC_TOKENS_PER_TOOL * len(tools)
        parts.texts.extend(_json_text(tool) for tool in tools)
        parts.fixed += _ANTHROPIC_SERVER_TOOL_TOKENS * sum(
            1 for tool in tools if isinstance(tool, Mapping) and tool.get("type") not in (None, "custom")
        )
    return parts.estimate("anthropic")


# Blocks whose tokens are their text (or JSON); any other type is unsized.
_ANTHROPIC_TEXT_BLOCKS = frozenset({"server_tool_use", "redacted_thinking", "mcp_tool_use"})


def _anthropic_content(content: Any, parts: _Parts) -> None:
    """Adds ``content`` (a string or content blocks) to ``parts``."""
    if content is None:
        return
    if isinstance(content, str):
        parts.texts.append(content)
        return
    for block in _as_list(content):
        if not isinstance(block, Mapping):
            parts.texts.append(_json_text(block))
            continue
        parts.fixed += _ANTHROPIC_TOKENS_PER_BLOCK
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.texts.append(block["text"])
        elif kind == "image":
            source = block.get("source")
            data = source.get("data") if isinstance(source, Mapping) and source.get("type") == "base64" else None
            parts.fixed += _anthropic_image_tokens(_base64_dimensions(data) if isinstance(data, str) else None)
        elif kind == "tool_use":
            parts.texts.append(str(block.get("name") or ""))
            parts.texts.append(_json_text(block.get("input")))
        elif kind == "tool_result":
            _anthropic_content(block.get("content"), parts)
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            parts.texts.append(block["thinking"])
        elif kind == "document":
            _anthropic_document(block, parts)
        elif kind == "search_result":
            parts.texts.append(str(block.get("title") or ""))
            parts.texts.append(str(block.get("source") or ""))
            _anthropic_content(block.get("content"), parts)
        elif kind in _ANTHROPIC_TEXT_BLOCKS:
            parts.texts.append(_json_text(block))
        else:
            # Server-tool results carry encrypted content, whose tokens are not its bytes; new block types
            # are not sized either.
            parts.texts.append(_json_text(block))
            parts.add_unsized(str(kind or "unknown"))


def _anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    if size is None:
        return _ANTHROPIC_IMAGE_TOKENS
    width, height = size
    # Resizing only shrinks the image, so its own pixels bound the count; +1 for rounding.
    return min(_ANTHROPIC_IMAGE_TOKENS, width * height // _ANTHROPIC_PIXELS_PER_TOKEN + 1)


def _anthropic_document(block: Mapping[str, Any], parts: _Parts) -> None:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise UnsizableInput("a document without a source cannot be sized before the call")
    kind = source.get("type")
    for key in ("title", "context"):
        if isinstance(block.get(key), str):
            parts.texts.append(block[key])
    if kind == "text" and isinstance(source.get("data"), str):
        parts.texts.append(source["data"])
    elif kind == "content":
        _anthropic_content(source.get("content"), parts)
    elif kind == "base64" and isinstance(source.get("data"), str):
        parts.add_unsized("document")  # a PDF's tokens (text + an image per page) are not its bytes
    else:
        raise UnsizableInput(f"a {kind or 'referenced'} document cannot be sized before the call; send it inline")


# --- image headers ----------------------------------------------------------------------------------------


def _data_url_dimensions(url: Any) -> tuple[int, int] | None:
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, _, data = url.partition(",")
    return _base64_dimensions(data) if header.endswith(";base64") else None


def _base64_dimensions(data: str) -> tuple[int, int] | None:
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


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
