"""One call through the provider, answers passed on as they arrive, settled exactly once whatever happens.

The ledger work (admit, settle) is synchronous DynamoDB I/O and runs in worker threads; the upstream call is
async (httpx), so one process relays many streams. A stream goes to the client event by event, as the
provider sends it; after its last byte the call is settled with the provider's usage and the cost goes out as
a final SSE comment (``: costbrake cost_usd=… request_id=…``, which SSE parsers ignore). A client that leaves
cancels the relay: the upstream connection is closed (the provider stops generating) and the call is settled
for what it carried.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import anyio
import httpx
from anyio import to_thread
from aws_lambda_powertools import Logger
from starlette.responses import Response, StreamingResponse

from costbrake.config import Settings
from costbrake.errors import CostbrakeError, ProviderFailed
from costbrake.gateway import telemetry
from costbrake.gateway.cache_step import CacheStep, replay
from costbrake.gateway.calls import AdmittedCall, FreeCall, PreparedCall
from costbrake.gateway.reducers import (
    EMBEDDING,
    cache_headers,
    cache_status,
    hit_headers,
    plan_headers,
    replayable,
)
from costbrake.gateway.service import Gateway
from costbrake.gateway.settlement import CLIENT_DISCONNECTED, Settler
from costbrake.providers import adapter_for
from costbrake.providers.base import ProviderAdapter, UpstreamResult
from costbrake.providers.sse import SseSplitter
from costbrake.providers.transport import RawResponse, Upstream, encode_json, endpoint, is_event_stream, open_upstream
from costbrake.records import CachedAnswer

T = TypeVar("T")
logger = Logger(child=True)


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    return await to_thread.run_sync(function, *args)


async def _shielded(function: Callable[..., T], *args: Any) -> T:
    """Ledger work that must finish even when the request is being cancelled (a client that left)."""
    with anyio.CancelScope(shield=True):
        result = await to_thread.run_sync(function, *args)
    return result


class Relay:
    def __init__(self, gateway: Gateway, settler: Settler, client: httpx.AsyncClient, settings: Settings) -> None:
        self._gateway = gateway
        self._settler = settler
        self._client = client
        self._settings = settings
        self._base_urls = {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url}
        cache = gateway.response_cache
        self._cache = CacheStep(cache, gateway.clock) if cache is not None else None

    async def complete(self, api: str, raw_body: bytes, headers: Mapping[str, str], request_id: str) -> Response:
        """A billed call to ``api`` (``providers.base.RESPONSES`` …): answered from the response cache (nothing
        reserved), or reserved, relayed, settled (and its answer cached)."""
        prepared = await _in_thread(self._gateway.prepare, api, raw_body, headers, request_id)
        miss = _Miss()
        if self._cache is not None and prepared.cache is not None and prepared.cache.eligible:
            answer, similarity = await self._look_up(self._cache, prepared, miss)
            prepared = miss.prepared or prepared
            if answer is not None:
                return await self._hit(prepared, answer, similarity)
        call = await _in_thread(self._gateway.reserve, prepared)
        call.cache_status = cache_status(prepared.cache)
        call.semantic_vector, call.semantic_slot = miss.vector, miss.slot
        adapter = adapter_for(call.plan.api)
        try:
            upstream = await self._open(call, adapter)
            if upstream.status < 300 and is_event_stream(upstream.headers.get("content-type", "")):
                return self._stream(call, adapter, upstream)
            try:
                raw = await upstream.read()
            finally:
                await upstream.close()
            return await self._answer(call, adapter, raw)
        except ProviderFailed as failure:
            await _shielded(self._settler.failed, call, failure)
            raise
        except Exception as crash:
            if call.settled:
                raise
            raise await _shielded(self._settler.crashed, call, crash) from crash

    # ---- the response cache -------------------------------------------------------------------

    async def _look_up(
        self, cache: CacheStep, prepared: PreparedCall, miss: _Miss
    ) -> tuple[CachedAnswer | None, float | None]:
        """The stored answer to this call (and the similarity of a semantic hit); on a semantic miss, ``miss``
        keeps the question's vector and the slot it takes once the answer is stored."""
        lookup = prepared.cache
        assert lookup is not None and lookup.answer_key is not None
        answer = replayable(await _in_thread(cache.get, prepared, lookup.answer_key), prepared)
        if answer is not None or lookup.semantic_text is None:
            return answer, None
        # The embedding is spend the request causes: a rate-limited (or blocked) caller must not reach it.
        prepared = await _in_thread(self._gateway.count_request, prepared)
        miss.prepared = prepared
        vector = await self._embed(prepared, lookup.semantic_text)
        if vector is None:
            return None, None
        search = await _in_thread(cache.search, prepared, vector)
        if search is None:
            return None, None
        if search.match is not None:
            found = await _in_thread(cache.get, prepared, search.match.entry.answer_key)
            answer = replayable(found, prepared)
            if answer is not None:
                return answer, search.match.similarity
        miss.vector, miss.slot = vector, search.free_slot
        return None, None

    async def _hit(self, prepared: PreparedCall, answer: CachedAnswer, similarity: float | None) -> Response:
        record = await _in_thread(self._gateway.record_hit, prepared, answer, similarity)
        telemetry.call_settled(record)
        logger.info(
            "call served from the response cache",
            extra={
                "request_id": record.request_id,
                "user": record.user_id,
                "feature": record.feature,
                "saved_usd": str(record.saved_usd),
                "similarity": str(record.cache_similarity),
            },
        )
        request_id = prepared.context.request_id
        headers = hit_headers(prepared, answer, similarity)
        adapter = adapter_for(prepared.plan.api)
        return replay(answer, adapter, prepared.plan.body, headers, lambda: cost_comment("0", request_id))

    async def _embed(self, prepared: PreparedCall, text: str) -> list[float] | None:
        """The semantic cache's embedding of ``text``: a call of its own, reserved, settled and recorded on the
        same feature and user; None (a plain miss, logged) when it is refused or fails."""
        try:
            embedding = await _in_thread(self._gateway.prepare_embedding, prepared, text, uuid.uuid4().hex)
            call = await _in_thread(partial(self._gateway.reserve, embedding, count_request=False))
        except CostbrakeError as refused:
            why = {"request_id": prepared.context.request_id, "why": str(refused)}
            logger.info("semantic lookup skipped", extra=why)
            return None
        call.cache_status = EMBEDDING
        adapter = adapter_for(call.plan.api)
        try:
            upstream = await self._open(call, adapter)
            try:
                raw = await upstream.read()
            finally:
                await upstream.close()
            result = adapter.result(raw, call.plan.body)
            if not result.ok:
                error = f"upstream HTTP {result.status}"
                await _in_thread(self._settler.refunded, call, result, result.status, error)
                return None
            await _in_thread(self._settler.answered, call, result)
            return first_embedding(result.body)
        except ProviderFailed as failure:
            await _shielded(self._settler.failed, call, failure)
            return None
        except BaseException as crash:  # the gateway broke, or the client left (cancelled): settle, then go on
            if not call.settled:
                await _shielded(self._settler.crashed, call, crash)
            if not isinstance(crash, Exception):
                raise
            logger.exception("semantic lookup failed", extra={"request_id": prepared.context.request_id})
            return None

    async def _store(self, call: AdmittedCall, result: UpstreamResult, cost_usd: str) -> None:
        if self._cache is not None and call.cache is not None and call.cache.eligible:
            await _shielded(self._cache.store, call, result, Decimal(cost_usd))

    async def free(self, api: str, raw_body: bytes, headers: Mapping[str, str], request_id: str) -> Response:
        """A call the provider does not bill (count_tokens): counted against the rate limit, forwarded, and
        answered with exactly what the provider answered (its 5xx as a 502); nothing is reserved or charged."""
        call: FreeCall = await _in_thread(self._gateway.admit_free, api, raw_body, headers, request_id)
        adapter = adapter_for(call.api)
        upstream = await self._post(
            adapter, *self._request(adapter, call.body, call.provider_key, call.forwarded_headers)
        )
        try:
            raw = await upstream.read()
        finally:
            await upstream.close()
        status = raw.status if raw.status < 500 else 502
        answer_headers = {"x-costbrake-request-id": request_id, "x-costbrake-cost-usd": "0"}
        return Response(raw.body, status, answer_headers, raw.content_type)

    async def _open(self, call: AdmittedCall, adapter: ProviderAdapter) -> Upstream:
        request = self._request(adapter, call.upstream_body, call.plan.provider_key, call.plan.forwarded_headers)
        call.sent = True  # from here the body may reach the provider
        return await self._post(adapter, *request)

    def _request(
        self, adapter: ProviderAdapter, client_body: Mapping[str, Any], key: str, forwarded: Mapping[str, str]
    ) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of the upstream request."""
        body = encode_json(adapter.upstream_body(client_body))
        return endpoint(self._base_urls[adapter.name], adapter.path), body, adapter.upstream_headers(key, forwarded)

    async def _post(self, adapter: ProviderAdapter, url: str, body: bytes, headers: dict[str, str]) -> Upstream:
        return await open_upstream(
            self._client,
            url,
            body,
            headers,
            provider=adapter.name,
            idle=self._settings.provider_idle_timeout_seconds,
            total=self._settings.provider_timeout_seconds,
        )

    async def _answer(self, call: AdmittedCall, adapter: ProviderAdapter, raw: RawResponse) -> Response:
        result = adapter.result(raw, call.plan.body)
        if not result.ok:
            # The provider's own 4xx (bad parameter, its rate limit) reaches the client as is; its 5xx is a 502.
            # Neither is billed by the provider: refunded.
            await _in_thread(self._settler.refunded, call, result, result.status, f"upstream HTTP {result.status}")
            status = result.status if 400 <= result.status < 500 else 502
            return Response(result.body, status, {"x-costbrake-request-id": call.request_id}, result.content_type)
        headers = await _in_thread(self._settler.answered, call, result)
        await self._store(call, result, headers["x-costbrake-cost-usd"])
        return Response(result.body, result.status, headers | _call_headers(call), result.content_type)

    def _stream(self, call: AdmittedCall, adapter: ProviderAdapter, upstream: Upstream) -> Response:
        headers = {
            "x-costbrake-request-id": call.request_id,
            "x-costbrake-model": call.plan.price.model,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # proxies must not hold the stream back
            **_call_headers(call),
        }
        content_type = upstream.headers.get("content-type", "text/event-stream")
        return StreamingResponse(self._events(call, adapter, upstream), upstream.status, headers, content_type)

    async def _events(self, call: AdmittedCall, adapter: ProviderAdapter, upstream: Upstream) -> AsyncIterator[bytes]:
        splitter = SseSplitter()
        carried = bytearray()  # every event the provider sent, for the usage at the end
        # The last event is held back until the call is settled: a client that stops reading at the end of
        # the stream ([DONE], message_stop) finds its call record written.
        held = b""
        try:
            async for chunk in upstream.chunks():
                for event in splitter.feed(chunk):
                    carried += event
                    if held:
                        yield held
                    held = event if adapter.relays(event, call.plan.body) else b""
            rest = splitter.rest()
            carried += rest
            raw = RawResponse(upstream.status, upstream.headers, bytes(carried))
            result = adapter.result(raw, call.plan.body)
            headers = await _shielded(self._settler.answered, call, result)
            # The whole stream as the provider sent it (a replay filters it for its own client, usage chunk too).
            stored = replace(result, body=raw.body)
            await self._store(call, stored, headers["x-costbrake-cost-usd"])  # before the last event goes out
            if held or rest:
                yield held + rest
            yield cost_comment(headers["x-costbrake-cost-usd"], call.request_id)
        except ProviderFailed as failure:  # the provider stalled or broke mid-stream: it may have generated it all
            await _shielded(self._settler.failed, call, failure)
            yield cost_comment(format(call.worst_case, "f"), call.request_id, error=failure.code)
        except BaseException:  # the client left (cancelled), or the gateway broke: settle what was carried
            if not call.settled:
                await _shielded(self._settler.cut_short, call, adapter, bytes(carried), CLIENT_DISCONNECTED, None)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await upstream.close()  # the provider stops generating when its connection closes


@dataclass
class _Miss:
    """A semantic miss: the question's vector and the slot it takes once its answer is stored."""

    vector: list[float] | None = None
    slot: int = 0
    prepared: PreparedCall | None = None  # the call with its request counted before the embedding


def _call_headers(call: AdmittedCall) -> dict[str, str]:
    headers = plan_headers(call.plan) | cache_headers(call.cache)
    if call.reservation.clamped_output_tokens is not None:
        headers["x-costbrake-max-tokens-clamped"] = str(call.reservation.clamped_output_tokens)
    return headers


def first_embedding(body: bytes) -> list[float] | None:
    """The first vector of an OpenAI embeddings answer (floats), None if it has none."""
    try:
        data = json.loads(body).get("data")
        vector = data[0]["embedding"]
    except (ValueError, AttributeError, LookupError, TypeError):
        return None
    if not isinstance(vector, list) or not all(isinstance(x, int | float) for x in vector):
        return None
    return [float(x) for x in vector]


def cost_comment(cost_usd: str, request_id: str, error: str | None = None) -> bytes:
    """The stream's last line: an SSE comment, ignored by SSE parsers, read by whoever wants the cost."""
    failure = f" error={error}" if error else ""
    return f": costbrake cost_usd={cost_usd} request_id={request_id}{failure}\n\n".encode()
