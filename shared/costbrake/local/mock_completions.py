"""What the mock provider 'generates' for a request: deterministic words, their tokens, the max-tokens cap."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from costbrake.local.mock_http import Dialect, dumps
from costbrake.local.mock_usage import PromptInput, TokenCounter

MIN_OUTPUT_TOKENS = 20
MAX_OUTPUT_TOKENS = 300
WORDS_PER_STREAM_EVENT = 4
MOCK_LABEL = "This reply comes from the costbrake mock provider; no real model was called."
_FILLER_WORDS = ("budget", "tokens", "ledger", "window", "spend", "limit", "cost", "call", "cap", "model")


@dataclass(frozen=True)
class Completion:
    """What the mock 'generated' for one request; identical for identical requests."""

    model: str
    input_tokens: int
    output_tokens: int
    truncated: bool
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def pieces(self) -> list[str]:
        """The text split into stream deltas that concatenate back to ``text``."""
        pieces = []
        for start in range(0, len(self.words), WORDS_PER_STREAM_EVENT):
            piece = " ".join(self.words[start : start + WORDS_PER_STREAM_EVENT])
            pieces.append(piece if start == 0 else " " + piece)
        return pieces


def complete(
    dialect: Dialect,
    body: Mapping[str, Any],
    prompt: PromptInput,
    extra: int,
    cap: int | None,
    *,
    count: TokenCounter,
    counts_reply: bool,
    reply_tokens: int | None,
) -> Completion:
    """The reply to ``body``: ``reply_tokens`` words or a hashed length; the reply counted by ``count`` when
    ``counts_reply`` (else one token per word), cut to ``cap`` tokens; ``extra`` input tokens on the prompt's."""
    model = str(body["model"])
    seed = hashlib.sha256(dumps([model, *prompt.texts]).encode("utf-8", "surrogatepass")).digest()
    wanted = reply_tokens or (
        MIN_OUTPUT_TOKENS + int.from_bytes(seed[:4], "big") % (MAX_OUTPUT_TOKENS - MIN_OUTPUT_TOKENS + 1)
    )
    words = _words(wanted, seed)
    produced = count(dialect, " ".join(words)) if counts_reply else wanted
    if cap is not None and produced > cap:
        words = _fit(dialect, words, cap, count=count, counts_reply=counts_reply)
    return Completion(
        model=model,
        input_tokens=prompt.tokens + extra,
        output_tokens=min(produced, cap) if cap is not None else produced,
        truncated=cap is not None and produced > cap,
        words=words,
    )


def _fit(
    dialect: Dialect, words: tuple[str, ...], cap: int, *, count: TokenCounter, counts_reply: bool
) -> tuple[str, ...]:
    """The longest prefix of ``words`` within ``cap`` tokens."""
    if not counts_reply:
        return words[:cap]
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        if count(dialect, " ".join(words[:middle])) <= cap:
            low = middle
        else:
            high = middle - 1
    return words[:low]


def _words(count: int, seed: bytes) -> tuple[str, ...]:
    label = MOCK_LABEL.split()
    filler = (_FILLER_WORDS[(seed[index % len(seed)] + index) % len(_FILLER_WORDS)] for index in range(count))
    return tuple([*label, *filler][:count])
