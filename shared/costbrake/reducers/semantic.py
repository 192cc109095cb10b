"""The semantic cache's logic: what is embedded, which entries it is compared with, and the comparison.

- **What is embedded:** the last user turn of a *single-turn* request (system/developer instructions and one
  user message of text). A follow-up such as "and in French?" means different things in different
  conversations, so multi-turn requests are not semantically cached (their exact key still is).
- **Compared with what:** the entries of one *scope*: the same API, model, system prompt and every other
  parameter of the request (tools, temperature, max tokens, response format, answer-changing headers), and
  the same embeddings model and dimensions. Only the user's question differs within a scope.
- **How:** vectors are stored normalised, as little-endian float16 (2 bytes a dimension: 1 KB at 512), so the
  cosine similarity is a dot product; pure Python (no numpy in the Lambda layer), work bounded by
  ``len(entries) x dimensions`` (the store reads at most its per-scope bound of entries).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import mul
from typing import Any

from costbrake.providers.base import CHAT_COMPLETIONS, MESSAGES, RESPONSES
from costbrake.reducers.request_key import digest, key_fields

MAX_DIMENSIONS = 4096  # bounds the CPU of one comparison; embedding models give 256-3072
_SYSTEM_ROLES = frozenset({"system", "developer"})


class InvalidVector(ValueError):
    """A vector that cannot be compared: empty, too long, zero or not finite."""


@dataclass(frozen=True)
class SemanticEntry:
    """One stored question: its normalised vector and the exact key of the answer it got."""

    vector: Sequence[float]
    answer_key: str  # the request key the answer is stored under (``ResponseCache.get``)
    created_at: int  # epoch seconds
    slot: int = 0  # where the store keeps it (its bounded set's slot)


@dataclass(frozen=True)
class Match:
    entry: SemanticEntry
    similarity: float


def normalised(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1; InvalidVector when that is impossible or it is too long."""
    if not vector or len(vector) > MAX_DIMENSIONS:
        raise InvalidVector(f"a vector needs 1 to {MAX_DIMENSIONS} dimensions, not {len(vector)}")
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if not math.isfinite(norm) or norm == 0:
        raise InvalidVector("a vector must be finite and not zero")
    return [x / norm for x in vector]


def encode_vector(vector: Sequence[float]) -> bytes:
    """Normalised, as little-endian float16 (what the store keeps)."""
    unit = normalised(vector)
    return struct.pack(f"<{len(unit)}e", *unit)


def decode_vector(data: bytes) -> tuple[float, ...]:
    """A stored vector (``encode_vector``'s bytes)."""
    if not data or len(data) % 2 or len(data) // 2 > MAX_DIMENSIONS:
        raise InvalidVector(f"{len(data)} bytes are not a float16 vector of at most {MAX_DIMENSIONS} dimensions")
    return struct.unpack(f"<{len(data) // 2}e", data)


def best_match(query: Sequence[float], entries: Iterable[SemanticEntry], threshold: Decimal | float) -> Match | None:
    """The entry most similar to ``query`` (cosine similarity), if it reaches ``threshold``; else None.

    ``query`` need not be normalised; entries are (the store keeps them so). Entries of another dimension
    (written with other model settings) are skipped. Work: one dot product per entry.
    """
    unit = normalised(query)
    dimensions = len(unit)
    floor = float(threshold)
    best: Match | None = None
    for entry in entries:
        if len(entry.vector) != dimensions:
            continue
        similarity = math.fsum(map(mul, unit, entry.vector))
        if similarity >= floor and (best is None or similarity > best.similarity):
            best = Match(entry, similarity)
    return best


# ---- what is embedded, and the scope it is compared in -------------------------------------------------


def semantic_text(api: str, body: Mapping[str, Any]) -> str | None:
    """The text of the only user turn of a single-turn request (after system/developer instructions), or None
    when the request is not single-turn text (a history, tool results, images, ...)."""
    if api == RESPONSES:
        items = body.get("input")
        if isinstance(items, str):
            return items or None
        return _single_user_text(items, with_system_roles=True)
    if api == CHAT_COMPLETIONS:
        return _single_user_text(body.get("messages"), with_system_roles=True)
    if api == MESSAGES:
        return _single_user_text(body.get("messages"), with_system_roles=False)
    return None


def semantic_scope(
    api: str,
    body: Mapping[str, Any],
    embedding_model: str,
    dimensions: int,
    headers: Mapping[str, str] | None = None,
) -> str:
    """The hash of everything a semantic hit must share with the stored question: the request without its user
    turn (model, system prompt, tools, parameters, answer-changing headers), and the embeddings model."""
    fields = key_fields(api, body, headers)
    request = dict(fields["body"])
    if api == RESPONSES:
        items = request.get("input")
        request["input"] = [] if isinstance(items, str) else _system_items(items)
    elif api == CHAT_COMPLETIONS:
        request["messages"] = _system_items(request.get("messages"))
    else:
        request.pop("messages", None)
    return digest({**fields, "body": request, "embedding": [embedding_model, dimensions]})


def system_prompt_sha256(api: str, body: Mapping[str, Any]) -> str | None:
    """Hash of the system prompt (Anthropic ``system``; OpenAI system/developer messages; Responses
    ``instructions`` and system/developer items), None without one: for reports grouping semantic entries."""
    if api == MESSAGES:
        system: Any = body.get("system")
    elif api == RESPONSES:
        items = body.get("input")
        system = [body.get("instructions"), [] if isinstance(items, str) else _system_items(items)]
        if system == [None, []]:
            system = None
    else:
        system = _system_items(body.get("messages")) or None
    return None if system in (None, "", []) else digest(system)


def _system_items(items: Any) -> list[Any]:
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, Mapping) and item.get("role") in _SYSTEM_ROLES]


def _single_user_text(items: Any, *, with_system_roles: bool) -> str | None:
    if not isinstance(items, list):
        return None
    rest = [
        item
        for item in items
        if not (with_system_roles and isinstance(item, Mapping) and item.get("role") in _SYSTEM_ROLES)
    ]
    if len(rest) != 1 or not isinstance(rest[0], Mapping) or rest[0].get("role") != "user":
        return None
    if rest[0].get("type", "message") != "message":
        return None
    return _text_of(rest[0].get("content"))


def _text_of(content: Any) -> str | None:
    """Text content as one string; None when it holds anything but text."""
    if isinstance(content, str):
        return content or None
    if not isinstance(content, list) or not content:
        return None
    texts = []
    for part in content:
        if not isinstance(part, Mapping) or part.get("type") not in ("text", "input_text"):
            return None
        text = part.get("text")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "\n".join(texts) or None
