"""The cost reducers' decisions on the request path (issue 12), pure: history truncation around ``bound_call``,
what the response cache does for a call (``cache_lookup``) and the record of a call served from it.

The I/O (the cache table, the embedding call) is ``costbrake.gateway.cache_step`` and the relay's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.config import Settings
from costbrake.errors import InputTooLarge, InvalidRequest
from costbrake.gateway.bounds import CallBounds, bound_call
from costbrake.gateway.calls import CacheLookup, PlannedCall, PreparedCall
from costbrake.pricing import ModelPrice
from costbrake.providers.base import CHAT_COMPLETIONS, MESSAGES, RESPONSES
from costbrake.records import AnswerForm, CachedAnswer, CallRecord, Feature
from costbrake.reducers.plan import plan_cache
from costbrake.reducers.request_key import CACHE_HEADER, InvalidCacheHeader, cache_request, request_key
from costbrake.reducers.semantic import semantic_scope
from costbrake.reducers.truncation import HistoryTooLong, truncate_history
from costbrake.tokens import (
    InputEstimate,
    estimate_anthropic_input_tokens,
    estimate_openai_input_tokens,
    estimate_openai_responses_input_tokens,
)

TRUNCATED_HEADER = "x-costbrake-truncated-messages"
SIMILARITY_PLACES = Decimal("0.0001")
# Cache statuses of a call record (``CallRecord.cache_status``) and of the ``x-costbrake-cache`` answer header.
HIT, MISS, BYPASS, EMBEDDING = "hit", "miss", "bypass", "embedding"

_ESTIMATES = {
    CHAT_COMPLETIONS: estimate_openai_input_tokens,
    MESSAGES: estimate_anthropic_input_tokens,
    RESPONSES: estimate_openai_responses_input_tokens,
}


def bound_or_truncate(
    api: str, body: dict[str, Any], price: ModelPrice, feature: Feature, *, auto_tiers: Mapping[str, str]
) -> tuple[dict[str, Any], CallBounds, int]:
    """(upstream body, bounds, messages dropped): ``bound_call``, and for a feature with ``truncate`` on whose
    request is above its input cap, the oldest turns dropped until it fits (then bound again). Histories with
    parts that cannot be sized (files, audio, server-tool results) are refused as before (413)."""
    try:
        return body, bound_call(api, body, price, feature, auto_tiers=auto_tiers), 0
    except InputTooLarge as too_large:
        estimate = _ESTIMATES.get(api)
        if not feature.truncate or estimate is None:
            raise
        sized: InputEstimate = estimate(body)
        if sized.unsized:
            raise
        try:
            cut = truncate_history(api, body, feature.max_input_tokens, estimate)
        except HistoryTooLong as error:
            raise InputTooLarge(
                f"{too_large.message} Truncation cannot help: {error}.", param=too_large.param
            ) from error
        if not cut.dropped:
            raise
        upstream = cut.body
        return upstream, bound_call(api, upstream, price, feature, auto_tiers=auto_tiers), cut.dropped


def cache_lookup(
    settings: Settings, feature: Feature, api: str, body: Mapping[str, Any], headers: Mapping[str, str], stream: bool
) -> CacheLookup | None:
    """What the response cache does for a call with this upstream ``body``; None when the feature does not
    cache or the deployment has no cache table. InvalidRequest for an unknown ``X-Costbrake-Cache``."""
    try:
        asked = cache_request(headers.get(CACHE_HEADER))
    except InvalidCacheHeader as error:
        raise InvalidRequest(str(error)) from error
    if not settings.cache_table or not feature.exact_cache:
        return None
    plan = plan_cache(feature.cache, api, body, asked)
    form = AnswerForm.SSE if stream else AnswerForm.JSON
    if not plan.exact:
        return CacheLookup(False, plan.reason, form, None, None, None)
    key = f"{request_key(api, body, headers)}.{form.value}"
    scope = None
    if plan.semantic_text is not None:
        model, dimensions = settings.cache_embedding_model, settings.cache_embedding_dimensions
        scope = f"{semantic_scope(api, body, model, dimensions, headers)}.{form.value}"
    return CacheLookup(True, plan.reason, form, key, plan.semantic_text, scope)


def replayable(answer: CachedAnswer | None, prepared: PreparedCall) -> CachedAnswer | None:
    """``answer`` if it can answer this call as it was asked (the same API and form), else None (a miss)."""
    lookup = prepared.cache
    if answer is None or lookup is None or answer.api != prepared.plan.api or answer.form is not lookup.form:
        return None
    return answer


def hit_record(prepared: PreparedCall, answer: CachedAnswer, similarity: float | None, latency_ms: int) -> CallRecord:
    """The record of a call served from the response cache: nothing reserved, charged or sent upstream."""
    plan, context = prepared.plan, prepared.context
    return CallRecord(
        request_id=context.request_id,
        timestamp=context.received_at,
        user_id=plan.caller.user_id,
        feature=plan.feature.name,
        key_id=plan.caller.key.key_id,
        provider=plan.provider,
        model_requested=plan.model_requested,
        model=answer.model,
        status="ok",
        http_status=200,
        cost_usd=Decimal(0),
        reserved_usd=Decimal(0),
        input_tokens=0,  # nothing was billed: the provider never saw the call
        output_tokens=0,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        estimated_input_tokens=plan.bounds.input_tokens,
        max_output_tokens=plan.bounds.max_output_tokens,
        usage_estimated=False,
        finish_reason=None,
        truncated=False,
        stream=plan.stream,
        downgraded_from=plan.downgraded_from,
        system_prompt_sha256=plan.system_prompt_sha256,
        latency_ms=latency_ms,
        cache_hit=True,
        saved_usd=answer.cost_usd,
        truncated_messages=plan.truncated_messages,
        cache_status=HIT,
        cache_similarity=None if similarity is None else Decimal(str(similarity)).quantize(SIMILARITY_PLACES),
    )


def hit_headers(prepared: PreparedCall, answer: CachedAnswer, similarity: float | None) -> dict[str, str]:
    headers = {
        "x-costbrake-request-id": prepared.context.request_id,
        "x-costbrake-cost-usd": "0",
        "x-costbrake-model": answer.model,
        CACHE_HEADER: HIT,
        "x-costbrake-saved-usd": format(answer.cost_usd, "f"),
        "x-costbrake-cached-at": datetime.fromtimestamp(answer.created_at).astimezone().isoformat(),
    }
    if similarity is not None:
        headers["x-costbrake-cache-similarity"] = format(Decimal(str(similarity)).quantize(SIMILARITY_PLACES), "f")
    return headers | plan_headers(prepared.plan)


def plan_headers(plan: PlannedCall) -> dict[str, str]:
    """Headers every answer to a planned call carries: downgrade and truncation."""
    headers = {}
    if plan.downgraded_from:
        headers["x-costbrake-downgraded-from"] = plan.downgraded_from
    if plan.truncated_messages:
        headers[TRUNCATED_HEADER] = str(plan.truncated_messages)
    return headers


def cache_status(lookup: CacheLookup | None) -> str | None:
    """A called (not served from the cache) call's cache status: None (the feature does not cache), miss, bypass."""
    if lookup is None:
        return None
    return MISS if lookup.eligible else BYPASS


def cache_headers(lookup: CacheLookup | None) -> dict[str, str]:
    status = cache_status(lookup)
    if lookup is None or status is None:
        return {}
    if status == BYPASS:
        return {CACHE_HEADER: status, "x-costbrake-cache-reason": lookup.reason[:200]}
    return {CACHE_HEADER: status}
