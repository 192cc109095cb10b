"""The input-token bound of a text, proven or calibrated, with no tokenizer.

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

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

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
    raw = json.loads((Path(__file__).parents[1] / "data" / "token_words.json").read_text(encoding="utf-8"))
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
