"""The real tokenizers the estimate must never fall below, loaded offline (dev dependencies only).

- ``o200k_base`` and ``cl100k_base``: OpenAI's BPE tables as shipped in the ``bpe-openai`` wheel (a
  tiktoken-compatible Rust encoder; tiktoken itself downloads its tables at run time).
- Claude: ``tokenizer.json`` from the ``anthropic==0.38.0`` wheel (MIT), Anthropic's last published
  tokenizer, read with the HF ``tokenizers`` package. The dev SDK is anthropic 2.x, so ``make venv``
  extracts the file to ``.tools/claude/tokenizer.json``; tests fail, never
  skip, without it.

Special-token text (``<|endoftext|>``) is counted as ordinary text, as the APIs do with user content.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLAUDE_TOKENIZER = Path(os.environ.get("COSTBRAKE_CLAUDE_TOKENIZER", ROOT / ".tools" / "claude" / "tokenizer.json"))
# anthropic-0.38.0-py3-none-any.whl: anthropic/tokenizer.json (the file the corpus counts were made with).
CLAUDE_TOKENIZER_SHA256 = "c241737df24b4e7f7c9af4fdcee29a0ca903dcb288a8b753bc346a3092911767"


class MissingTokenizer(RuntimeError):
    pass


@cache
def openai_encoding(name: str) -> Any:
    """The bpe-openai ``Encoding`` for ``o200k_base`` or ``cl100k_base``."""
    with warnings.catch_warnings():  # bpe-openai opens its tables with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import bpe_openai
        except ImportError as error:  # pragma: no cover - a venv without the dev extras
            raise MissingTokenizer("bpe-openai is not installed: run `make venv` (pip install -e '.[dev]')") from error
        return bpe_openai.get_encoding(name)


@cache
def claude_tokenizer() -> Any:
    if not CLAUDE_TOKENIZER.is_file():
        raise MissingTokenizer(
            f"Claude's tokenizer is missing at {CLAUDE_TOKENIZER}: run `make venv` "
            "(it extracts it from the anthropic==0.38.0 wheel)"
        )
    raw = CLAUDE_TOKENIZER.read_bytes()
    if hashlib.sha256(raw).hexdigest() != CLAUDE_TOKENIZER_SHA256:
        raise MissingTokenizer(f"{CLAUDE_TOKENIZER} is not anthropic 0.38.0's tokenizer.json (sha256 differs)")
    from tokenizers import Tokenizer

    return Tokenizer.from_str(raw.decode("utf-8"))


def openai_o200k_tokens(text: str) -> int:
    return int(openai_encoding("o200k_base")._backend.count(text))  # encode() without building the id list


def openai_cl100k_tokens(text: str) -> int:
    return int(openai_encoding("cl100k_base")._backend.count(text))


def claude_tokens(text: str) -> int:
    """Anthropic's published (legacy) tokenizer; newer Claude models count up to ~1.3x o200k_base on
    natural text (see ``costbrake.tokens``)."""
    return len(claude_tokenizer().encode(text, add_special_tokens=False).ids)


COUNTERS = {"o200k_base": openai_o200k_tokens, "cl100k_base": openai_cl100k_tokens, "claude": claude_tokens}


# --- adversarial samples (the bench's property-style sample; the tests use hypothesis) -------------------

SPECIAL_LOOKING = ("<|endoftext|>", "<|endofprompt|>", "<|fim_prefix|>", "<EOT>", "<META>", "<SOS>", "\ufdfa")
ALPHABETS = {
    "ascii": "".join(map(chr, range(128))),
    "controls": "".join(map(chr, [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])),
    "whitespace": " \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000",
    "punctuation": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ",
    "letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "digits": "0123456789 ,.",
}
SCRIPT_RANGES = (
    (0x0400, 0x052F),  # Cyrillic
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK
    (0xA000, 0xA4CF),  # Yi
    (0xA500, 0xA63F),  # Vai
    (0x13A0, 0x13FF),  # Cherokee
    (0x0600, 0x06FF),  # Arabic
    (0xAC00, 0xD7AF),  # Hangul
    (0xFB00, 0xFDFF),  # presentation forms: NFKC expands them
    (0x1F300, 0x1FAFF),  # emoji
    (0x10000, 0x10FFFF),  # every astral plane
)


def random_char(rng: Any) -> str:
    """A character from anywhere: ASCII, a script the calibration never saw, or any plane (no surrogates)."""
    roll = rng.random()
    if roll < 0.4:
        return chr(rng.randrange(128))
    if roll < 0.7:
        low, high = rng.choice(SCRIPT_RANGES)
        return chr(rng.randint(low, high))
    code = rng.randrange(0x110000)
    return chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd"


def random_text(rng: Any, words: list[str]) -> str:
    """One adversarial string: mixed scripts, one alphabet, known words in odd case, pieces of every kind
    the estimator prices, long repeats, or special-token text."""
    shape = rng.randrange(6)
    length = rng.choice((1, 2, 3, 5, 8, 13, 40, 120))
    if shape == 0:
        return "".join(random_char(rng) for _ in range(length))
    if shape == 1:
        alphabet = rng.choice(list(ALPHABETS.values()))
        return "".join(rng.choice(alphabet) for _ in range(length))
    if shape == 2:
        pieces = []
        for _ in range(length):
            word = rng.choice(words)
            word = rng.choice((word, word.upper(), word.capitalize(), word.swapcase()))
            pieces.append(word + rng.choice(("", " ", " ", "\n", "  ", ".", "(", "_", "\t", "0", "é")))
        return "".join(pieces)
    if shape == 3:
        return "".join(_random_piece(rng, words) for _ in range(length))
    if shape == 4:
        unit = "".join(random_char(rng) for _ in range(rng.randint(1, 3)))
        return unit * rng.randint(2, 400)
    text = "".join(random_char(rng) for _ in range(length))
    cut = rng.randint(0, len(text))
    return text[:cut] + rng.choice(SPECIAL_LOOKING) + text[cut:]


def _random_piece(rng: Any, words: list[str]) -> str:
    """A piece of code-like text: a word, whitespace, punctuation, digits or a stray character."""
    kind = rng.randrange(6)
    if kind == 0:
        word = rng.choice(words)
        return rng.choice((" ", "", "_", ".")) + rng.choice((word, word.capitalize(), word.upper()))
    if kind == 1:
        return rng.choice(("\n", "\n\n", "")) + rng.choice((" ", "\t")) * rng.choice((0, 1, 2, 4, 8, 12, 33))
    if kind == 2:
        return "".join(rng.choice(ALPHABETS["punctuation"]) for _ in range(rng.randint(1, 4)))
    if kind == 3:
        return "".join(rng.choice(ALPHABETS["digits"]) for _ in range(rng.randint(1, 12)))
    if kind == 4:
        return rng.choice(ALPHABETS["controls"] + ALPHABETS["whitespace"])
    return random_char(rng)
