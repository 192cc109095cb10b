"""How far the offline token estimate is from real tokenizers on the test corpus.

    .venv/bin/python -m bench.estimator                  # figures from the stored reference counts
    .venv/bin/python -m bench.estimator --refresh DIR    # recount with the real tokenizers in DIR

Reference counts live in ``tests/data/corpus/reference_tokens.json`` so the figures (and the unit tests)
need no tokenizer. ``--refresh`` needs the dev-only packages ``tiktoken`` and ``tokenizers`` and, in DIR:
``o200k_base.tiktoken`` and ``cl100k_base.tiktoken`` (OpenAI's BPE tables, checked against tiktoken's
published SHA-256; PyPI's ``bpe-openai`` wheel ships them gzipped under ``bpe_openai/data/``, MIT) and
``claude_legacy_tokenizer.json`` (Anthropic's last published tokenizer, shipped as
``anthropic/tokenizer.json`` in the ``anthropic`` SDK up to 0.38.0, MIT). It also rebuilds the word list
the estimator ships (``costbrake/data/token_words.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from costbrake.tokens import PROVIDERS, estimate_text_tokens

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
REFERENCE = CORPUS / "reference_tokens.json"
WORDS = ROOT / "shared" / "costbrake" / "data" / "token_words.json"

# Published in tiktoken_ext/openai_public.py.
TIKTOKEN_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
CLAUDE_LEGACY_FILE = "claude_legacy_tokenizer.json"
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
    parser.add_argument("--refresh", metavar="DIR", type=Path, help="recount with the real tokenizers in DIR")
    args = parser.parse_args(list(argv) if argv is not None else [])
    if args.refresh:
        refresh(args.refresh)
    report()


def report() -> None:
    texts = corpus_texts()
    files = load_reference()["files"]
    stale = sorted(name for name, text in texts.items() if files.get(name, {}).get("sha256") != sha256_text(text))
    if stale:
        print(f"reference counts are stale for {', '.join(stale)}: run with --refresh DIR")
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
    print(f"speed: {_throughput(texts):.1f} MB/s on the whole corpus (estimate with no provider)")
    print(
        "references: openai = o200k_base; anthropic = max(legacy Claude tokenizer, "
        f"{CLAUDE_OVER_O200K} x o200k_base); any = max(both, cl100k_base)"
    )


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


def refresh(tokenizer_dir: Path) -> None:
    counters = _load_counters(tokenizer_dir)
    files = {}
    for name, text in corpus_texts().items():
        files[name] = {"sha256": sha256_text(text), "chars": len(text)}
        files[name].update((label, count(text)) for label, count in counters.items())
    reference = {
        "tokenizers": {
            "o200k_base": f"tiktoken BPE table, sha256 {TIKTOKEN_SHA256['o200k_base']}",
            "cl100k_base": f"tiktoken BPE table, sha256 {TIKTOKEN_SHA256['cl100k_base']}",
            "claude_legacy": "anthropic SDK <= 0.38.0 tokenizer.json, sha256 "
            + hashlib.sha256((tokenizer_dir / CLAUDE_LEGACY_FILE).read_bytes()).hexdigest(),
        },
        "files": files,
    }
    REFERENCE.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    words = _single_token_words(tokenizer_dir)
    WORDS.write_text(
        json.dumps(
            {
                "about": "Lower-case words that are one token (after a space) in o200k_base, cl100k_base and "
                "the legacy Claude tokenizer, most frequent first. Built by bench/estimator.py --refresh.",
                "words": " ".join(words),
            }
        )
        + "\n",
        encoding="utf-8",
    )
    print(
        f"wrote {REFERENCE.relative_to(ROOT)} ({len(files)} files) and {WORDS.relative_to(ROOT)} ({len(words)} words)"
    )


def _load_counters(tokenizer_dir: Path) -> dict[str, Callable[[str], int]]:
    encodings = _tiktoken_encodings(tokenizer_dir)
    from tokenizers import Tokenizer  # dev only

    claude = Tokenizer.from_file(str(tokenizer_dir / CLAUDE_LEGACY_FILE))
    return {
        "o200k_base": lambda text: len(encodings["o200k_base"].encode(text, disallowed_special=())),
        "cl100k_base": lambda text: len(encodings["cl100k_base"].encode(text, disallowed_special=())),
        "claude_legacy": lambda text: len(claude.encode(text).ids),
    }


def _tiktoken_encodings(tokenizer_dir: Path) -> dict[str, Any]:
    import tiktoken  # dev only
    import tiktoken_ext.openai_public as openai_public
    from tiktoken.load import load_tiktoken_bpe

    def local_table(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        # tiktoken's own constructors (patterns, special tokens), fed from DIR instead of the network.
        name = url.rsplit("/", 1)[1]
        return load_tiktoken_bpe(str(tokenizer_dir / name), expected_hash=expected_hash)

    openai_public.load_tiktoken_bpe = local_table
    return {
        "o200k_base": tiktoken.Encoding(**openai_public.o200k_base()),
        "cl100k_base": tiktoken.Encoding(**openai_public.cl100k_base()),
    }


def _single_token_words(tokenizer_dir: Path) -> list[str]:
    encodings = _tiktoken_encodings(tokenizer_dir)
    from tokenizers import Tokenizer  # dev only

    claude = Tokenizer.from_file(str(tokenizer_dir / CLAUDE_LEGACY_FILE))
    o200k, cl100k = encodings["o200k_base"], encodings["cl100k_base"]
    ranked = sorted(
        (rank, token[1:].decode()) for token, rank in o200k._mergeable_ranks.items() if _WORD_TOKEN.match(token)
    )
    return [
        word for _, word in ranked if len(cl100k.encode(" " + word)) == 1 and len(claude.encode(" " + word).ids) == 1
    ]


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
