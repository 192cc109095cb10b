"""What the gateway tries for one request, from its feature's cache mode and the client's ``X-Costbrake-Cache``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from costbrake.records import CacheMode
from costbrake.reducers.request_key import CacheRequest, exact_eligibility, stateful_reason
from costbrake.reducers.semantic import semantic_text


@dataclass(frozen=True)
class CachePlan:
    exact: bool  # look the request key up (one GetItem); on a miss, store the answer under it
    semantic_text: str | None  # embed this and search the scope (then add it on a miss); None: no semantic step
    reason: str  # why, for logs and the gateway's cache header on a miss


def plan_cache(mode: CacheMode, api: str, body: Mapping[str, Any], request: CacheRequest) -> CachePlan:
    """Exact features: deterministic requests (or ``allow``). Semantic features: the operator accepted answers
    to similar questions, so single-turn text requests are looked up (exact key first, then by similarity)
    whatever their temperature; other requests as an exact feature's. ``bypass`` and requests depending on
    state outside their body are never cached."""
    if mode is CacheMode.OFF:
        return CachePlan(False, None, "the feature does not cache")
    exact = exact_eligibility(api, body, request)
    if mode is CacheMode.EXACT or request is CacheRequest.BYPASS or stateful_reason(api, body) is not None:
        return CachePlan(exact.cacheable, None, exact.reason)
    text = semantic_text(api, body)
    if text is None:
        return CachePlan(exact.cacheable, None, f"{exact.reason}; not a single-turn text request: no semantic step")
    return CachePlan(True, text, "semantic")
