"""The response cache on the request path (issue 12): look up, replay, store; a cache that fails is a miss.

Synchronous DynamoDB I/O (the relay runs it in worker threads). A lookup is one GetItem (exact) and, for a
semantic feature's single-turn question, one bounded Query of the scope's vectors (after the embedding call,
which the relay makes through the gateway's own embeddings path). An answer is stored only when it is complete:
a 2xx with the provider's usage (a stream that ran to its end), not clamped below the request's own output
bound, and small enough for one item. A semantic vector is added only when its answer was stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from decimal import Decimal

from aws_lambda_powertools import Logger
from starlette.responses import Response, StreamingResponse

from costbrake.clock import Clock
from costbrake.dal.cache import CacheUnavailable, ResponseCache, SemanticSearch
from costbrake.gateway.calls import AdmittedCall, PreparedCall
from costbrake.providers.base import ProviderAdapter, UpstreamResult
from costbrake.providers.sse import SseSplitter
from costbrake.records import AnswerForm, CachedAnswer, Feature

logger = Logger(child=True)


class CacheStep:
    def __init__(self, cache: ResponseCache, clock: Clock) -> None:
        self.cache = cache
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    def get(self, prepared: PreparedCall, answer_key: str) -> CachedAnswer | None:
        try:
            return self.cache.get(cache_partition(prepared.plan.feature), answer_key, self._now())
        except CacheUnavailable:
            logger.warning("response cache read failed: a miss", extra={"request_id": prepared.context.request_id})
            return None

    def search(self, prepared: PreparedCall, vector: list[float]) -> SemanticSearch | None:
        lookup, feature = prepared.cache, prepared.plan.feature
        if lookup is None or lookup.semantic_scope is None:
            return None
        try:
            return self.cache.semantic_search(
                cache_partition(feature), lookup.semantic_scope, vector, feature.semantic_threshold, self._now()
            )
        except (CacheUnavailable, ValueError):  # the table, or a vector that cannot be compared
            logger.warning("semantic search failed: a miss", extra={"request_id": prepared.context.request_id})
            return None

    def store(self, call: AdmittedCall, result: UpstreamResult, cost_usd: Decimal) -> bool:
        """Keep a complete answer (and its question's vector); False when it was not stored (logged why)."""
        lookup, plan = call.cache, call.plan
        if lookup is None or lookup.answer_key is None or not storable(call, result):
            return False
        feature, now = plan.feature, self._now()
        try:
            outcome = self.cache.put(
                cache_partition(feature),
                lookup.answer_key,
                api=plan.api,
                model=result.served_model or plan.price.model,
                form=lookup.form,
                content_type=result.content_type or "application/json",
                body=result.body,
                usage=result.usage,
                cost_usd=cost_usd,
                now=now,
                ttl_seconds=feature.cache_ttl_seconds,
            )
            if not outcome.stored:
                logger.info("answer not cached", extra={"request_id": call.request_id, "reason": outcome.reason})
                return False
            if call.semantic_vector is not None and lookup.semantic_scope is not None:
                self.cache.add_semantic(
                    cache_partition(feature),
                    lookup.semantic_scope,
                    vector=call.semantic_vector,
                    answer_key=lookup.answer_key,
                    slot=call.semantic_slot,
                    now=now,
                    ttl_seconds=feature.cache_ttl_seconds,
                )
        except (CacheUnavailable, ValueError):
            logger.warning("response cache write failed", extra={"request_id": call.request_id})
            return False
        return True


def storable(call: AdmittedCall, result: UpstreamResult) -> bool:
    """A complete answer to the request as keyed: 2xx, with the provider's usage, output not clamped by the
    budget's room (the key is of the unclamped body)."""
    return (
        200 <= result.status < 300
        and result.usage is not None
        and not result.usage.estimated
        and call.reservation.clamped_output_tokens is None
        and bool(result.body)
    )


def replay(
    answer: CachedAnswer,
    adapter: ProviderAdapter,
    client_body: Mapping[str, object],
    headers: dict[str, str],
    closing: Callable[[], bytes],
) -> Response:
    """The stored answer as the client asked for it: JSON as it was, or a stream replayed event by event (the
    events this client's request relays, e.g. not a usage chunk it did not ask for), ending with ``closing()``."""
    if answer.form is AnswerForm.JSON:
        return Response(answer.body, 200, headers, answer.content_type)
    stream_headers = {**headers, "cache-control": "no-cache", "x-accel-buffering": "no"}
    events = _events(answer.body, adapter, client_body, closing)
    return StreamingResponse(events, 200, stream_headers, answer.content_type or "text/event-stream")


async def _events(
    body: bytes, adapter: ProviderAdapter, client_body: Mapping[str, object], closing: Callable[[], bytes]
) -> AsyncIterator[bytes]:
    for event in _split(body):
        if adapter.relays(event, client_body):
            yield event
    yield closing()


def _split(body: bytes) -> Iterable[bytes]:
    splitter = SseSplitter()
    yield from splitter.feed(body)
    rest = splitter.rest()
    if rest:
        yield rest


def cache_partition(feature: Feature) -> str:
    """Where a feature's answers are stored: its name and cache generation (a new generation starts empty)."""
    return f"{feature.name}@{feature.cache_generation}"
