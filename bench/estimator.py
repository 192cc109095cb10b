"""How far the offline token estimate is from real tokenizers: the corpus, and arbitrary strings.

    .venv/bin/python -m bench.estimator                  # corpus figures + a property-style sample
    .venv/bin/python -m bench.estimator --refresh        # recount the corpus, rebuild the word data

Reference counts live in ``tests/data/corpus/reference_tokens.json`` so the corpus figures (and the unit
tests) need no tokenizer. The property-style sample and ``--refresh`` use the dev-only tokenizers of
``tests/reference_tokenizers.py``: o200k_base and cl100k_base from the ``bpe-openai`` wheel (MIT) and
Anthropic's last published tokenizer, ``tokenizer.json`` of the ``anthropic==0.38.0`` wheel (MIT),
which ``make venv`` extracts to ``.tools/claude/``. ``--refresh`` also rebuilds the data the estimator
ships (``costbrake/data/token_words.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from costbrake.tokens import PROVIDERS, estimate_text_tokens

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
REFERENCE = CORPUS / "reference_tokens.json"
WORDS = ROOT / "shared" / "costbrake" / "data" / "token_words.json"

# The property-style sample: this many arbitrary strings per tokenizer (tests/reference_tokenizers.py).
SAMPLE_SIZE = 20_000
SAMPLE_SEED = 8
# Claude 3+ tokenizers produce up to ~30% more tokens than GPT-4o's on the same input.
CLAUDE_OVER_O200K = 1.3


def reference_for(provider: str | None, counts: dict[str, int]) -> int:
    """The count an estimate for ``provider`` must not fall below."""
    openai = counts["o200k_base"]
    anthropic = max(counts["claude_legacy"], math.ceil(CLAUDE_OVER_O200K * openai))
    if provider == "openai":
        return openai
    if provider == "anthropic":
        return anthropic
    return max(openai, anthropic, counts["cl100k_base"])


def corpus_texts() -> dict[str, str]:
    # Bytes, not text mode: the corpus keeps its \r\n and odd whitespace on purpose.
    return {path.name: path.read_bytes().decode("utf-8") for path in sorted(CORPUS.glob("*.txt"))}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_reference() -> dict[str, Any]:
    reference: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return reference


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.estimator", description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="store_true", help="recount with the real tokenizers")
    parser.add_argument("--sample", type=int, default=SAMPLE_SIZE, help="arbitrary strings per tokenizer")
    args = parser.parse_args(list(argv) if argv is not None else [])
    if args.refresh:
        refresh()
    report()
    if args.sample:
        property_sample(args.sample)


def report() -> None:
    texts = corpus_texts()
    files = load_reference()["files"]
    stale = sorted(name for name, text in texts.items() if files.get(name, {}).get("sha256") != sha256_text(text))
    if stale:
        print(f"reference counts are stale for {', '.join(stale)}: run with --refresh")
    columns = [*PROVIDERS, None]
    totals = {provider: [0, 0] for provider in columns}
    worst = {provider: 0.0 for provider in columns}
    print(f"{'file':24} " + " ".join(f"{_label(p):>23}" for p in columns))
    print(f"{'':24} " + " ".join(f"{'ref':>7} {'est':>7} {'ratio':>7}" for _ in columns))
    for name, text in texts.items():
        if name in stale or name not in files:
            continue
        cells = []
        for provider in columns:
            ref = reference_for(provider, files[name])
            est = estimate_text_tokens(text, provider=provider)
            totals[provider][0] += ref
            totals[provider][1] += est
            worst[provider] = max(worst[provider], (ref - est) / ref)
            cells.append(f"{ref:7d} {est:7d} {est / ref:7.2f}")
        print(f"{name:24} " + " ".join(cells))
    print(
        f"{'overall':24} "
        + " ".join(f"{ref:7d} {est:7d} {est / ref:7.2f}" for ref, est in (totals[p] for p in columns))
    )
    print(f"{'worst undershoot':24} " + " ".join(f"{100 * worst[p]:22.1f}%" for p in columns))
    english = [name for name in texts if name.startswith(ENGLISH_AND_CODE) and name in files and name not in stale]
    print(
        "overestimate on English/code: "
        + ", ".join(f"{_label(p)} {_corpus_ratio(p, english, texts, files):.3f}" for p in columns if p is not None)
        + f" ({len(english)} files, at most {MAX_ENGLISH_AND_CODE_RATIO})"
    )
    print(f"speed: {_throughput(texts):.1f} MB/s on the whole corpus (estimate with no provider)")
    print(
        "references: openai = o200k_base; anthropic = max(legacy Claude tokenizer, "
        f"{CLAUDE_OVER_O200K} x o200k_base); any = max(both, cl100k_base)"
    )


ENGLISH_AND_CODE = ("prose_", "code_", "data_", "markdown", "log_")
MAX_ENGLISH_AND_CODE_RATIO = 1.35


def _corpus_ratio(provider: str | None, names: list[str], texts: dict[str, str], files: dict[str, Any]) -> float:
    estimate = sum(estimate_text_tokens(texts[name], provider=provider) for name in names)
    return estimate / sum(reference_for(provider, files[name]) for name in names)


def property_sample(count: int) -> None:
    """The smallest estimate / real ratio over ``count`` arbitrary strings per tokenizer (below 1: an
    undershoot)."""
    references = _reference_tokenizers()
    words = json.loads(WORDS.read_text(encoding="utf-8"))["words"].split()[:3000]
    rng = random.Random(SAMPLE_SEED)
    texts = [references.random_text(rng, words) for _ in range(count)]
    profiles = {"o200k_base": "openai", "cl100k_base": "openai", "claude": "anthropic"}
    print(f"property-style sample: {count} arbitrary strings per tokenizer (seed {SAMPLE_SEED})")
    for name, provider in profiles.items():
        counter = references.COUNTERS[name]
        worst, worst_text, below = math.inf, "", 0
        for text in texts:
            real = counter(text)
            estimate = estimate_text_tokens(text, provider=provider)
            below += estimate < real
            if real and estimate / real < worst:
                worst, worst_text = estimate / real, text
        print(f"  {name:12} ({provider:9}) worst ratio {worst:.3f}, undershoots {below}, at {worst_text[:40]!r}")


def _reference_tokenizers() -> ModuleType:
    """``tests/reference_tokenizers.py`` (dev only: bpe-openai, tokenizers, .tools/claude/tokenizer.json)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module("reference_tokenizers")


def _label(provider: str | None) -> str:
    return provider or "any"


def _throughput(texts: dict[str, str]) -> float:
    blob = "\n".join(texts.values())
    rounds = 5
    started = time.perf_counter()
    for _ in range(rounds):
        estimate_text_tokens(blob)
    elapsed = time.perf_counter() - started
    return len(blob.encode("utf-8")) * rounds / elapsed / 1e6


# --- refresh (dev only: real tokenizers) --------------------------------------------------------------------

_WORD_TOKEN = re.compile(rb"^ [a-z]{2,}$")
_ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
# Characters the OpenAI pre-tokenizers put in front of a word's pre-token (not a letter, digit, \r or \n).
_JOINERS = [chr(code) for code in range(128) if not chr(code).isalnum() and chr(code) not in " \r\n"]


def refresh() -> None:
    references = _reference_tokenizers()
    files = {}
    counters = {
        "o200k_base": references.openai_o200k_tokens,
        "cl100k_base": references.openai_cl100k_tokens,
        "claude_legacy": references.claude_tokens,
    }
    for name, text in corpus_texts().items():
        files[name] = {"sha256": sha256_text(text), "chars": len(text)}
        files[name].update((label, count(text)) for label, count in counters.items())
    reference = {
        "tokenizers": {
            "o200k_base": "bpe-openai o200k_base (tiktoken's BPE table)",
            "cl100k_base": "bpe-openai cl100k_base (tiktoken's BPE table)",
            "claude_legacy": f"anthropic SDK <= 0.38.0 tokenizer.json, sha256 {references.CLAUDE_TOKENIZER_SHA256}",
        },
        "files": files,
    }
    REFERENCE.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    data = _word_data(references)
    WORDS.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE.relative_to(ROOT)} ({len(files)} files) and {WORDS.relative_to(ROOT)}")


def _word_data(references: ModuleType) -> dict[str, Any]:
    """What ``costbrake.tokens`` ships: strings each one token in all three tokenizers, and the ASCII pairs
    that are tokens (rule 2 of its docstring)."""
    o200k = references.openai_encoding("o200k_base")
    cl100k = references.openai_encoding("cl100k_base")

    def one_token(text: str) -> bool:
        return bool(
            references.openai_o200k_tokens(text) == 1
            and references.openai_cl100k_tokens(text) == 1
            and references.claude_tokens(text) == 1
        )

    ranked = sorted(
        (rank, token[1:].decode()) for token, rank in o200k._mergeable_ranks.items() if _WORD_TOKEN.match(token)
    )
    words = [word for _, word in ranked if one_token(" " + word)]
    spaced, bare = [], []
    for word in words:
        for form in dict.fromkeys((word, word.capitalize(), word.upper())):
            if form != word and one_token(" " + form):
                spaced.append(form)
            if one_token(form):
                bare.append(form)
    punctuation = set()
    for token in o200k._mergeable_ranks:
        text = token.decode("utf-8", errors="replace")
        body = text[1:] if text.startswith(" ") else text
        if 2 <= len(body) <= 6 and all(char in _ASCII_PUNCTUATION for char in body) and one_token(text):
            punctuation.add(text)
    joined = {}
    for joiner in _JOINERS:
        failing = [
            form
            for form in bare
            if references.openai_o200k_tokens(joiner + form) > 2 or references.openai_cl100k_tokens(joiner + form) > 2
        ]
        if failing:
            joined[joiner] = " ".join(failing)
    return {
        "about": "Built by bench/estimator.py --refresh from o200k_base, cl100k_base and the legacy Claude "
        "tokenizer; every entry is one token in all three. words: lower-case words, one token after a space, "
        "most frequent first. spaced: capitalised and upper-case forms of those words, one token after a space. "
        "bare: forms that are one token without a space. punctuation: ASCII punctuation runs, with their leading "
        "space if any. joined: for a character that o200k_base and cl100k_base put in front of a word's "
        "pre-token, the bare forms that character and the word do NOT encode in at most two tokens. bigrams: the "
        "pairs of ASCII characters (printable, tab, newline) that are one token in o200k_base and cl100k_base "
        "and a merge of the Claude tokenizer, concatenated.",
        "words": " ".join(words),
        "spaced": " ".join(spaced),
        "bare": " ".join(bare),
        "punctuation": sorted(punctuation),
        "joined": joined,
        "bigrams": "".join(_bigrams(references, o200k, cl100k)),
    }


def _bigrams(references: ModuleType, o200k: Any, cl100k: Any) -> list[str]:
    claude = json.loads(references.CLAUDE_TOKENIZER.read_text(encoding="utf-8"))
    merges = {tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in claude["model"]["merges"]}
    byte_char = _byte_level_chars()
    chars = [chr(code) for code in range(32, 127)] + ["\t", "\n"]
    return [
        first + second
        for first in chars
        for second in chars
        if (first + second).encode() in o200k._mergeable_ranks
        and (first + second).encode() in cl100k._mergeable_ranks
        and (byte_char[ord(first)], byte_char[ord(second)]) in merges
    ]


def _byte_level_chars() -> dict[int, str]:
    """GPT-2's byte-to-character map, which the Claude tokenizer's merges are written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars, strict=True)}


if __name__ == "__main__":
    main(sys.argv[1:])
