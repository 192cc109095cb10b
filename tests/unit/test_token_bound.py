"""The token bound against the real tokenizers (o200k_base, cl100k_base, Anthropic's published Claude
tokenizer; see ``tests/reference_tokenizers.py``): zero undershoots on arbitrary Unicode, and the
adversarial text of issue 8 (rows 1 and 2) counted at or above what the providers bill.

Deterministic: hypothesis is derandomised and keeps no example database, so CI sees the same strings.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from costbrake.tokens import estimate_anthropic_input_tokens, estimate_openai_input_tokens, estimate_text_tokens
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_tokenizers import (
    ALPHABETS,
    SCRIPT_RANGES,
    SPECIAL_LOOKING,
    claude_tokens,
    openai_cl100k_tokens,
    openai_o200k_tokens,
    random_text,
)

WORDS = json.loads(
    (Path(__file__).resolve().parents[2] / "shared" / "costbrake" / "data" / "token_words.json").read_text("utf-8")
)["words"].split()[:3000]
# Each tokenizer and the profile that must bound it.
REFERENCES: dict[str, tuple[Callable[[str], int], str]] = {
    "o200k_base": (openai_o200k_tokens, "openai"),
    "cl100k_base": (openai_cl100k_tokens, "openai"),
    "claude": (claude_tokens, "anthropic"),
}
GENERATED_STRINGS = 20_000


def undershoots(text: str) -> list[str]:
    """The tokenizers whose count of ``text`` the estimate falls below (for its profile, and with none)."""
    found = []
    for name, (count, provider) in REFERENCES.items():
        real = count(text)
        if estimate_text_tokens(text, provider=provider) < real or estimate_text_tokens(text) < real:
            found.append(f"{name}: {real} tokens, estimated {estimate_text_tokens(text, provider=provider)}")
    return found


# --- property: arbitrary Unicode -------------------------------------------------------------------------

any_character = st.characters(exclude_categories=["Cs"])  # every plane; lone surrogates are not UTF-8
script_text = st.sampled_from(SCRIPT_RANGES).flatmap(
    lambda bounds: st.text(st.characters(min_codepoint=bounds[0], max_codepoint=bounds[1]), min_size=1)
)
word_soup = st.lists(
    st.tuples(
        st.sampled_from(WORDS),
        st.sampled_from((str.lower, str.upper, str.capitalize, str.swapcase)),
        st.sampled_from(("", " ", "  ", "\n", "\t", ".", "(", "_", "'", "0", "\x00", "é", "\r\n")),
    ).map(lambda part: part[1](part[0]) + part[2]),
    min_size=1,
    max_size=40,
).map("".join)
repeats = st.tuples(st.text(any_character, min_size=1, max_size=3), st.integers(2, 400)).map(
    lambda unit: unit[0] * unit[1]
)
special_tokens = st.tuples(st.text(any_character, max_size=20), st.sampled_from(SPECIAL_LOOKING), st.text(max_size=20))
texts = st.one_of(
    st.text(any_character, min_size=1, max_size=60),
    st.text(st.sampled_from("".join(ALPHABETS.values())), min_size=1, max_size=120),
    script_text,
    word_soup,
    repeats,
    special_tokens.map("".join),
    st.randoms(use_true_random=False).map(lambda rng: random_text(rng, WORDS)),
)


def test_given_20000_arbitrary_strings_when_estimated_then_never_below_any_reference_tokenizer() -> None:
    generated: list[str] = []

    @settings(
        max_examples=GENERATED_STRINGS,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(texts)
    def never_below(text: str) -> None:
        generated.append(text)
        assert undershoots(text) == [], repr(text)

    never_below()
    assert len(generated) >= GENERATED_STRINGS


# --- regressions: issue 8, rows 1 and 2 ---------------------------------------------------------------------


def random_chars(low: int, high: int, count: int = 2_000, seed: int = 8) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randint(low, high)) for _ in range(count))


ADVERSARIAL = {
    "ascii controls": "".join(map(chr, [*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F])) * 200,
    "null bytes": "\x00" * 5_000,
    "vertical tab, form feed, separators": "\v\f\x1c\x1d\x1e\x1f" * 500,
    "carriage returns": "\r" * 3_000,
    "carriage returns between words": "the\r\rcat\r" * 500,
    "repeated pipes": "|" * 3_000,
    "repeated backslashes": "\\" * 3_000,
    "repeated dollars": "$" * 3_000,
    "pipes, backslashes, dollars": random.Random(8).choices("|\\$", k=3_000),
    "cjk extension a": random_chars(0x3400, 0x4DBF),
    "random cyrillic": random_chars(0x0400, 0x04FF),
    "common cjk": random_chars(0x4E00, 0x9FFF),
    "yi": random_chars(0xA000, 0xA48C),
    "vai": random_chars(0xA500, 0xA62B),
    "cherokee": random_chars(0x13A0, 0x13F5),
    "special-token text": "<|endoftext|><|endofprompt|><EOT><META>" * 200,
    "nfkc expansion": "\ufdfa" * 500,  # one character, 3 bytes; 33 bytes (and ~15 Claude tokens) after NFKC
    "random letters": "".join(
        random.Random(8).choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", k=3_000)
    ),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_given_adversarial_text_when_estimated_then_at_least_what_each_tokenizer_counts(name: str) -> None:
    text = "".join(ADVERSARIAL[name])
    assert undershoots(text) == []


def test_given_150k_control_characters_in_a_request_when_estimated_then_the_whole_count_is_reserved() -> None:
    # Row 1: claude-opus-4-1 was estimated 22 tokens and billed 150,019.
    text = "".join(map(chr, [*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F])) * 6_300
    message = {"role": "user", "content": text}
    anthropic = estimate_anthropic_input_tokens({"model": "claude-opus-4-1", "max_tokens": 10, "messages": [message]})
    openai = estimate_openai_input_tokens({"model": "gpt-4o", "messages": [message]})
    assert anthropic.tokens >= claude_tokens(text)
    assert openai.tokens >= openai_o200k_tokens(text)
    assert anthropic.tokens >= len(text) > 150_000


def test_given_text_that_nfkc_expands_when_estimated_then_the_anthropic_bound_counts_the_expansion() -> None:
    text = "\ufdfa" * 100
    assert len(unicodedata.normalize("NFKC", text).encode("utf-8")) == 3_300
    assert estimate_text_tokens(text, provider="openai") <= len(text.encode("utf-8"))  # 300: o200k bytes
    assert estimate_text_tokens(text, provider="anthropic") >= claude_tokens(text) > 300
