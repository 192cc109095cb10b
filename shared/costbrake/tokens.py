"""Offline input-token estimates, biased high, for reserving a call's worst-case cost.

No tokenizer ships here: tiktoken downloads its tables at run time and Anthropic publishes none for
its current models. Instead the text is cut the way BPE pre-tokenizers cut it and each piece is priced
by what the reference tokenizers do with such pieces: a word that is one token in all of them
(``data/token_words.json``) costs one token, any other word is priced by its length as a rare word or
name would be, digits come in groups of three, punctuation, non-Latin scripts and emoji cost more per
character, and random-looking strings (keys, hashes, base64) cost nearly one token per character.

Two rate profiles, calibrated on ``tests/data/corpus`` (figures: ``python -m bench.estimator``):
``openai`` stays at or above o200k_base, the tokenizer of every priced OpenAI model; ``anthropic`` stays
at or above the larger of Anthropic's last published (legacy) tokenizer and 1.3 x o200k_base, the
upper end of what Claude 3+ tokenizers were measured to produce relative to GPT-4o. Without a provider
the larger of the two is returned. Known limit: adversarial input (random characters from rare Unicode
blocks, random-letter gibberish) can still be counted low.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from costbrake.errors import InvalidRequest

# --- text -------------------------------------------------------------------------------------------------

# Text split the way BPE pre-tokenizers split it. Latin letters (accented ones too) form words; other
# non-ASCII characters end a piece and are priced by script.
_ACCENTED = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_PUNCTUATION = r"!-/:-@\[-`{-~"
_PIECE = re.compile(
    rf"[A-Z]*[a-z{_ACCENTED}]+"  # a word, capitalised or not
    rf"|[A-Z{_ACCENTED}]+"  # an all-caps word
    r"|[0-9]{1,3}"
    rf"|[{_PUNCTUATION}]+"
    r"|\s+"
)
# Runs made of the characters of keys, hashes, ids and base64; a run that switches often between lower
# case, upper case, digits and symbols is random-looking, and BPE cuts it into tokens of 1-3 characters.
_OPAQUE_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_\-]{16,}")
# Separators such as ---- or ==== compress to a token or two however long they are.
_REPEATED_PUNCTUATION = re.compile(rf"([{_PUNCTUATION}])\1{{3,}}")
_HEX = re.compile(r"[0-9a-fA-F\-]+")
_CHARACTER_CLASS_RUN = re.compile(r"[a-z]+|[A-Z]+|[0-9]+|[^A-Za-z0-9]+")
_OPAQUE_MIN_SWITCHES_PER_CHAR = 0.4
_RUN_CHARS_PER_EXTRA_TOKEN = 16
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

# Non-ASCII scripts, by Unicode range; each profile prices a character of each script.
_SCRIPTS: dict[str, str] = {
    "latin": "\u0080-\u024f\u1e00-\u1eff",  # Latin-1 and Latin Extended (accents, Vietnamese)
    "cyrillic": "\u0400-\u052f",
    "greek_semitic": "\u0370-\u03ff\u0590-\u08ff",  # Greek, Hebrew, Arabic, Syriac, Thaana
    "indic_thai": "\u0530-\u058f\u0900-\u0eff\u10a0-\u10ff",  # Armenian, Indic, Thai, Lao, Georgian
    "cjk": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "kana_fullwidth": "\u3040-\u30ff\u31f0-\u31ff\uff00-\uffef",
    "hangul": "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f",
    "symbols": "\u2000-\u2bff\u3000-\u303f\ufe00-\ufe0f",  # punctuation, arrows, dingbats, selectors
    "astral": "\U00010000-\U0010ffff",  # emoji and other 4-byte characters
}
_SCRIPT_PATTERNS = {name: re.compile(f"[{ranges}]+") for name, ranges in _SCRIPTS.items()}


@dataclass(frozen=True)
class _TextFeatures:
    """What the text is made of; each profile turns these into tokens linearly."""

    known_words: int = 0  # letter runs that are one token in every reference tokenizer
    unknown_words: int = 0
    unknown_word_letters: int = 0
    digit_groups: int = 0
    punctuation_runs: int = 0
    punctuation_extra_chars: int = 0  # characters after the second of each run (pairs such as ") are one token)
    run_tokens: int = 0  # whitespace and repeated-punctuation runs (not a lone space), +1 per 16 chars
    opaque_chars: int = 0
    opaque_hex_chars: int = 0
    script_chars: tuple[tuple[str, int], ...] = ()
    other_non_ascii_chars: int = 0


@dataclass(frozen=True)
class _Profile:
    known_word: float
    unknown_word: float
    unknown_word_letter: float
    digit_group: float
    punctuation_run: float
    punctuation_extra_char: float
    run_token: float
    opaque_char: float
    opaque_hex_char: float
    script_char: dict[str, float]
    other_non_ascii_char: float
    safety_factor: float

    def tokens(self, features: _TextFeatures) -> int:
        raw = (
            features.known_words * self.known_word
            + features.unknown_words * self.unknown_word
            + features.unknown_word_letters * self.unknown_word_letter
            + features.digit_groups * self.digit_group
            + features.punctuation_runs * self.punctuation_run
            + features.punctuation_extra_chars * self.punctuation_extra_char
            + features.run_tokens * self.run_token
            + features.opaque_chars * self.opaque_char
            + features.opaque_hex_chars * self.opaque_hex_char
            + sum(count * self.script_char[script] for script, count in features.script_chars)
            + features.other_non_ascii_chars * self.other_non_ascii_char
        )
        return max(1, math.ceil(raw * self.safety_factor))  # non-empty text is at least one token


_PROFILES: dict[str, _Profile] = {
    "openai": _Profile(
        known_word=1.0,
        unknown_word=0.3,
        unknown_word_letter=0.4,
        digit_group=1.0,
        punctuation_run=1.05,
        punctuation_extra_char=0.7,
        run_token=1.0,
        opaque_char=0.85,
        opaque_hex_char=0.65,
        script_char={
            "latin": 0.3,  # on top of the word the accented letter belongs to
            "cyrillic": 0.5,
            "greek_semitic": 0.75,
            "indic_thai": 0.75,
            "cjk": 0.95,
            "kana_fullwidth": 1.1,
            "hangul": 1.2,
            "symbols": 1.2,
            "astral": 2.5,
        },
        other_non_ascii_char=1.5,
        safety_factor=1.05,
    ),
    # Claude 3+ tokenizers were measured at up to 1.3x GPT-4o's counts (English +16%, code +30%), so ASCII
    # weights are about the OpenAI ones x 1.25 (x 1.05 safety); scripts follow the legacy Claude tokenizer.
    "anthropic": _Profile(
        known_word=1.25,
        unknown_word=0.375,
        unknown_word_letter=0.5,
        digit_group=1.25,
        punctuation_run=1.4,
        punctuation_extra_char=0.85,
        run_token=1.25,
        opaque_char=1.05,
        opaque_hex_char=0.8,
        script_char={
            "latin": 1.0,
            "cyrillic": 0.8,
            "greek_semitic": 1.5,
            "indic_thai": 2.5,
            "cjk": 1.3,
            "kana_fullwidth": 1.5,
            "hangul": 1.6,
            "symbols": 1.5,
            "astral": 3.2,
        },
        other_non_ascii_char=2.5,
        safety_factor=1.05,
    ),
}
PROVIDERS = tuple(_PROFILES)


@cache
def _known_words() -> frozenset[str]:
    # Loaded on first use, not at import: the gateway's cold start does not pay for it (~5 ms).
    raw = (Path(__file__).parent / "data" / "token_words.json").read_text(encoding="utf-8")
    return frozenset(json.loads(raw)["words"].split())


def estimate_text_tokens(text: str, *, provider: str | None = None) -> int:
    """At least as many tokens as ``text`` takes for ``provider`` ("openai" or "anthropic"); for no
    provider, at least as many as for either."""
    if not text:
        return 0
    features = _features(text)
    if provider is None:
        return max(profile.tokens(features) for profile in _PROFILES.values())
    try:
        profile = _PROFILES[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}") from None
    return profile.tokens(features)


def _features(text: str) -> _TextFeatures:
    opaque_chars = opaque_hex_chars = 0

    def take_opaque(match: re.Match[str]) -> str:
        nonlocal opaque_chars, opaque_hex_chars
        run = match.group()
        switches = len(_CHARACTER_CLASS_RUN.findall(run)) - 1
        if switches < len(run) * _OPAQUE_MIN_SWITCHES_PER_CHAR:
            return run
        if _HEX.fullmatch(run):
            opaque_hex_chars += len(run)
        else:
            opaque_chars += len(run)
        return " "

    text = _OPAQUE_CANDIDATE.sub(take_opaque, text)
    run_tokens = 0

    def take_repeated(match: re.Match[str]) -> str:
        nonlocal run_tokens
        run_tokens += 1 + len(match.group()) // _RUN_CHARS_PER_EXTRA_TOKEN
        return " "

    text = _REPEATED_PUNCTUATION.sub(take_repeated, text)

    known = _known_words()
    known_words = unknown_words = unknown_word_letters = 0
    digit_groups = punctuation_runs = punctuation_extra_chars = 0
    for piece in _PIECE.findall(text):
        first = piece[0]
        if first.isalpha():
            if len(piece) == 1 or piece in known or (piece[1:].islower() and piece.lower() in known):
                known_words += 1
            else:
                unknown_words += 1
                unknown_word_letters += len(piece)
        elif first.isdigit():
            digit_groups += 1
        elif first.isspace():
            if piece != " ":  # a single space joins the next word's token
                run_tokens += 1 + len(piece) // _RUN_CHARS_PER_EXTRA_TOKEN
        else:
            punctuation_runs += 1
            punctuation_extra_chars += max(0, len(piece) - 2)

    script_chars: list[tuple[str, int]] = []
    other_non_ascii_chars = 0
    if not text.isascii():
        other_non_ascii_chars = sum(map(len, _NON_ASCII.findall(text)))
        for script, pattern in _SCRIPT_PATTERNS.items():
            count = sum(map(len, pattern.findall(text)))
            if count:
                script_chars.append((script, count))
                other_non_ascii_chars -= count

    return _TextFeatures(
        known_words=known_words,
        unknown_words=unknown_words,
        unknown_word_letters=unknown_word_letters,
        digit_groups=digit_groups,
        punctuation_runs=punctuation_runs,
        punctuation_extra_chars=punctuation_extra_chars,
        run_tokens=run_tokens,
        opaque_chars=opaque_chars,
        opaque_hex_chars=opaque_hex_chars,
        script_chars=tuple(script_chars),
        other_non_ascii_chars=other_non_ascii_chars,
    )


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
# Images: high detail covers at most 8 tiles (2048x768): 85 + 8 x 170 = 1,445 on gpt-4o; patch-billed
# models cap at 1,536 patches x 1.62 (gpt-4.1-mini, gpt-5-mini) or x 1.72 (o4-mini) = 2,642. gpt-4o-mini
# bills images at 2,833 + 5,667 per tile to keep its dollar price equal to gpt-4o's.
_OPENAI_IMAGE_TOKENS = 2_700
_OPENAI_LOW_DETAIL_IMAGE_TOKENS = 600
_GPT_4O_MINI_IMAGE_TOKENS = 2_833 + 5_667 * 8
_GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS = 2_833

# Anthropic: images are resized to at most ~1.15 megapixels, (width x height) / 750 = ~1,600 tokens.
_ANTHROPIC_IMAGE_TOKENS = 1_600
_ANTHROPIC_TOKENS_PER_MESSAGE = 5
_ANTHROPIC_REQUEST_OVERHEAD = 10
_ANTHROPIC_TOKENS_PER_TOOL = 12
# The tool-use system prompt Anthropic adds when tools are present (346 tokens on Claude 4 models), and
# what an Anthropic-defined tool (bash 245, text editor 700, computer use 735 + its system prompt) adds.
_ANTHROPIC_TOOL_SYSTEM_PROMPT = 400
_ANTHROPIC_SERVER_TOOL_TOKENS = 1_500
_ANTHROPIC_TOKENS_PER_BLOCK = 3


class UnsizableInput(InvalidRequest):
    """Content whose size cannot be known before the call (a file stored at the provider, a remote PDF),
    refused because no worst case can be reserved for it."""

    code = "unsizable_input"


def estimate_openai_input_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens of a chat.completions request body, biased high."""
    texts: list[str] = []
    fixed = _OPENAI_REPLY_PRIMING
    model = str(body.get("model") or "")
    for message in _as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            texts.append(_json_text(message))
            continue
        fixed += _OPENAI_TOKENS_PER_MESSAGE
        texts.append(str(message.get("role") or ""))
        if message.get("name"):
            fixed += _OPENAI_TOKENS_PER_NAME
            texts.append(str(message["name"]))
        fixed += _openai_content(message.get("content"), model, texts)
        for key in ("refusal", "tool_call_id"):
            if isinstance(message.get(key), str):
                texts.append(message[key])
        calls = _as_list(message.get("tool_calls"))
        if isinstance(message.get("function_call"), Mapping):
            calls.append({"function": message["function_call"]})
        for call in calls:
            fixed += _OPENAI_TOKENS_PER_TOOL_CALL
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                texts.append(str(function.get("name") or ""))
                texts.append(str(function.get("arguments") or ""))
            else:
                texts.append(_json_text(call))
    tools = _as_list(body.get("tools")) + _as_list(body.get("functions"))
    if tools:
        fixed += _OPENAI_TOOLS_PREAMBLE + _OPENAI_TOKENS_PER_TOOL * len(tools)
        texts.extend(_json_text(tool) for tool in tools)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") != "text":
        fixed += _OPENAI_RESPONSE_FORMAT_OVERHEAD
        texts.append(_json_text(response_format))
    if isinstance(body.get("tool_choice"), Mapping):
        texts.append(_json_text(body["tool_choice"]))
    return estimate_text_tokens("\n".join(texts), provider="openai") + fixed


def _openai_content(content: Any, model: str, texts: list[str]) -> int:
    """Appends the text of ``content`` to ``texts``; returns the tokens of parts priced as a whole."""
    if content is None:
        return 0
    if isinstance(content, str):
        texts.append(content)
        return 0
    fixed = 0
    for part in _as_list(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else None
            fixed += _openai_image_tokens(model, detail)
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, Mapping) or not isinstance(file.get("file_data"), str):
                raise UnsizableInput("a file referenced by id cannot be sized before the call; send file_data")
            texts.append(file["file_data"])  # priced as the base64 it is sent as: far above its real tokens
        else:
            texts.append(_json_text(part))
    return fixed


def _openai_image_tokens(model: str, detail: Any) -> int:
    if model.startswith("gpt-4o-mini"):
        return _GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS if detail == "low" else _GPT_4O_MINI_IMAGE_TOKENS
    return _OPENAI_LOW_DETAIL_IMAGE_TOKENS if detail == "low" else _OPENAI_IMAGE_TOKENS


def estimate_anthropic_input_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens of a Messages request body, biased high."""
    texts: list[str] = []
    fixed = _ANTHROPIC_REQUEST_OVERHEAD
    fixed += _anthropic_content(body.get("system"), texts)
    for message in _as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            texts.append(_json_text(message))
            continue
        fixed += _ANTHROPIC_TOKENS_PER_MESSAGE
        fixed += _anthropic_content(message.get("content"), texts)
    tools = _as_list(body.get("tools"))
    if tools:
        fixed += _ANTHROPIC_TOOL_SYSTEM_PROMPT + _ANTHROPIC_TOKENS_PER_TOOL * len(tools)
        texts.extend(_json_text(tool) for tool in tools)
        fixed += _ANTHROPIC_SERVER_TOOL_TOKENS * sum(
            1 for tool in tools if isinstance(tool, Mapping) and tool.get("type") not in (None, "custom")
        )
    return estimate_text_tokens("\n".join(texts), provider="anthropic") + fixed


def _anthropic_content(content: Any, texts: list[str]) -> int:
    """Appends the text of ``content`` (a string or content blocks) to ``texts``; returns the tokens of
    blocks priced as a whole."""
    if content is None:
        return 0
    if isinstance(content, str):
        texts.append(content)
        return 0
    fixed = 0
    for block in _as_list(content):
        if not isinstance(block, Mapping):
            texts.append(_json_text(block))
            continue
        fixed += _ANTHROPIC_TOKENS_PER_BLOCK
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "image":
            fixed += _ANTHROPIC_IMAGE_TOKENS
        elif kind == "tool_use":
            texts.append(str(block.get("name") or ""))
            texts.append(_json_text(block.get("input")))
        elif kind == "tool_result":
            fixed += _anthropic_content(block.get("content"), texts)
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            texts.append(block["thinking"])
        elif kind == "document":
            fixed += _anthropic_document(block, texts)
        else:
            texts.append(_json_text(block))
    return fixed


def _anthropic_document(block: Mapping[str, Any], texts: list[str]) -> int:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise UnsizableInput("a document without a source cannot be sized before the call")
    kind = source.get("type")
    if kind == "text" and isinstance(source.get("data"), str):
        texts.append(source["data"])
        return 0
    if kind == "content":
        return _anthropic_content(source.get("content"), texts)
    if kind == "base64" and isinstance(source.get("data"), str):
        texts.append(source["data"])  # priced as the base64 it is sent as: far above its real tokens
        return 0
    raise UnsizableInput(f"a {kind or 'referenced'} document cannot be sized before the call; send it inline")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
