"""What a request body's walk yields: the sized tokens and the parts no bound can be read from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from costbrake.errors import InvalidRequest
from costbrake.tokens.text import estimate_text_tokens


class UnsizableInput(InvalidRequest):
    """Content that cannot be sent inline and whose size cannot be known before the call (a file stored at
    the provider, a remote PDF), refused because no worst case can be reserved for it."""

    code = "unsizable_input"


@dataclass(frozen=True)
class InputEstimate:
    """The input tokens of a request body, bounded from above.

    ``tokens`` bounds every part that can be sized from the body. ``unsized`` names each part whose
    tokens are not a function of its bytes (a base64 PDF is ~1.5-3k tokens a page whatever its size;
    audio; content types the walkers do not know), in body order: when it is non-empty the only sound
    input bound is the model's context window, which the provider refuses to exceed.
    """

    tokens: int
    unsized: tuple[str, ...] = ()

    def bound(self, context_window: int) -> int:
        """The input bound to reserve: ``tokens``, or the context window when a part is unsized."""
        return max(self.tokens, context_window) if self.unsized else self.tokens


@dataclass
class RequestParts:
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


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
