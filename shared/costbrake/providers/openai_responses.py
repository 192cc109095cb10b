"""OpenAI Responses upstream: POST /v1/responses, plain JSON or SSE (``response.*`` events).

A response's usage (``input_tokens`` with ``input_tokens_details.cached_tokens``, ``output_tokens`` with
``output_tokens_details.reasoning_tokens``) sums every model pass of the response (built-in tool loops
included); its web searches are its ``web_search_call`` output items, billed per call. A stream carries the
whole response, usage included, in its last lifecycle event: ``response.completed``, ``response.incomplete``
(``max_output_tokens`` reached) or ``response.failed``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from costbrake.pricing import CHAT, RESPONSES, usage_from_openai_responses
from costbrake.providers.base import OPENAI, UpstreamResult
from costbrake.providers.base import RESPONSES as RESPONSES_API
from costbrake.providers.openai_chat import openai_headers
from costbrake.providers.sse import iter_sse_events, json_object, text_bytes, text_or_none
from costbrake.providers.transport import RawResponse
from costbrake.usage import Usage

# Lifecycle events that carry the final response object (with usage).
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
WEB_SEARCH_CALL = "web_search_call"


class OpenAIResponsesAdapter:
    name = OPENAI
    api = RESPONSES_API
    path = "/v1/responses"
    modes = (CHAT, RESPONSES)

    def upstream_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(body)

    def upstream_headers(self, api_key: str, extra_headers: Mapping[str, str] | None) -> dict[str, str]:
        return openai_headers(api_key, extra_headers)

    def result(self, raw: RawResponse, client_body: Mapping[str, Any]) -> UpstreamResult:
        response: dict[str, Any] | None = None
        if 200 <= raw.status < 300:
            response = final_response(raw.body) if raw.is_event_stream else json_object(raw.body)
        usage, model, finish = parse_response(response) if response is not None else (None, None, None)
        return UpstreamResult(
            status=raw.status,
            body=raw.body,
            content_type=raw.content_type,
            usage=usage,
            served_model=model,
            finish_reason=finish,
            request_id=raw.request_id,
        )

    def relays(self, event: bytes, client_body: Mapping[str, Any]) -> bool:
        return True

    def streamed_output_bytes(self, body: bytes) -> int:
        """UTF-8 bytes of the output deltas a (partial) stream carried.

        Reasoning tokens are billed as output but never streamed (at most a summary is): once the stream has
        opened a reasoning item, its output is unknown and the caller's output bound applies (``sys.maxsize``).
        """
        total = 0
        for event in iter_sse_events(body):
            payload = json_object(event.data.encode("utf-8"))
            if payload is None:
                continue
            kind = str(payload.get("type") or event.event or "")
            item = payload.get("item")
            if isinstance(item, dict) and item.get("type") == "reasoning":
                return sys.maxsize
            if kind.endswith(".delta"):
                total += text_bytes(payload.get("delta"))
        return total


def final_response(body: bytes) -> dict[str, Any] | None:
    """The response object of a stream's last lifecycle event that carries one (None: the stream never ended)."""
    final: dict[str, Any] | None = None
    for event in iter_sse_events(body):
        payload = json_object(event.data.encode("utf-8"))
        if payload is None:
            continue
        kind = payload.get("type", event.event)
        if kind in FINAL_EVENTS and isinstance(payload.get("response"), dict):
            final = payload["response"]
    return final


def parse_response(response: Mapping[str, Any]) -> tuple[Usage | None, str | None, str | None]:
    """(usage, model, finish reason) of a response object: the finish reason is ``incomplete_details.reason``
    (``max_output_tokens``, ``content_filter``) when the response is incomplete, else its status."""
    return _usage(response), text_or_none(response.get("model")), _finish_reason(response)


def web_search_calls(response: Mapping[str, Any]) -> int:
    output = response.get("output")
    if not isinstance(output, list):
        return 0
    return sum(1 for item in output if isinstance(item, dict) and item.get("type") == WEB_SEARCH_CALL)


def _usage(response: Mapping[str, Any]) -> Usage | None:
    raw_usage = response.get("usage")
    if not isinstance(raw_usage, dict):
        return None
    try:
        return usage_from_openai_responses(
            raw_usage, service_tier=response.get("service_tier"), web_search_requests=web_search_calls(response)
        )
    except (KeyError, TypeError, ValueError):
        return None  # malformed counts: the gateway charges the worst case and flags the record instead


def _finish_reason(response: Mapping[str, Any]) -> str | None:
    details = response.get("incomplete_details")
    if isinstance(details, dict) and text_or_none(details.get("reason")):
        return str(details["reason"])
    return text_or_none(response.get("status"))
