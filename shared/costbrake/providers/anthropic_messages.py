"""Anthropic messages upstream: POST /v1/messages, plain JSON or SSE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costbrake.pricing import CHAT, usage_from_anthropic
from costbrake.providers.base import ANTHROPIC, COUNT_TOKENS, MESSAGES, UpstreamResult
from costbrake.providers.sse import iter_sse_events, json_object, text_bytes, text_or_none
from costbrake.providers.transport import RawResponse, forwardable_headers
from costbrake.usage import Usage

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


class AnthropicMessagesAdapter:
    name = ANTHROPIC
    api = MESSAGES
    path = "/v1/messages"
    modes = (CHAT,)

    def upstream_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(body)

    def upstream_headers(self, api_key: str, extra_headers: Mapping[str, str] | None) -> dict[str, str]:
        return {
            "anthropic-version": DEFAULT_ANTHROPIC_VERSION,
            **forwardable_headers(extra_headers),  # the client's anthropic-version / anthropic-beta win
            "x-api-key": api_key,
            "content-type": "application/json",
            "accept": "application/json",
        }

    def result(self, raw: RawResponse, client_body: Mapping[str, Any]) -> UpstreamResult:
        return _result(raw)

    def relays(self, event: bytes, client_body: Mapping[str, Any]) -> bool:
        return True

    def streamed_output_bytes(self, body: bytes) -> int:
        """UTF-8 bytes of the output a (partial) stream carried: each output token is at least one byte."""
        total = 0
        for event in iter_sse_events(body):
            payload = json_object(event.data.encode("utf-8"))
            if payload is not None and payload.get("type") == "content_block_delta":
                delta = payload.get("delta")
                total += text_bytes({k: v for k, v in delta.items() if k != "type"}) if isinstance(delta, dict) else 0
            elif payload is not None and payload.get("type") == "content_block_start":
                block = payload.get("content_block")
                total += text_bytes({k: v for k, v in block.items() if k != "type"}) if isinstance(block, dict) else 0
        return total


class AnthropicCountTokensAdapter(AnthropicMessagesAdapter):
    """POST /v1/messages/count_tokens: free, answers ``{"input_tokens": N}``; forwarded as is, never settled."""

    api = COUNT_TOKENS
    path = "/v1/messages/count_tokens"


def _result(raw: RawResponse) -> UpstreamResult:
    usage: Usage | None = None
    model: str | None = None
    stop_reason: str | None = None
    if 200 <= raw.status < 300:
        if raw.is_event_stream:
            usage, model, stop_reason = parse_anthropic_sse(raw.body)
        else:
            usage, model, stop_reason = _parse_message(raw.body)
    return UpstreamResult(
        status=raw.status,
        body=raw.body,
        content_type=raw.content_type,
        usage=usage,
        served_model=model,
        finish_reason=stop_reason,
        request_id=raw.request_id,
    )


def _parse_message(body: bytes) -> tuple[Usage | None, str | None, str | None]:
    message = json_object(body)
    if message is None:
        return None, None, None
    return (
        _usage(message.get("usage")),
        text_or_none(message.get("model")),
        text_or_none(message.get("stop_reason")),
    )


def parse_anthropic_sse(body: bytes) -> tuple[Usage | None, str | None, str | None]:
    """(usage, model, stop_reason) of a complete messages event stream.

    Usage is cumulative: ``message_start`` carries input and cache counts, each ``message_delta`` the
    output count so far (newer API versions repeat input/cache counts there); the latest non-null value of
    each field wins. Without a ``message_delta`` the output count was never reported and usage is None.
    """
    counts: dict[str, Any] = {}
    saw_final_counts = False
    model: str | None = None
    stop_reason: str | None = None
    for event in iter_sse_events(body):
        payload = json_object(event.data.encode("utf-8"))
        if payload is None:
            continue
        kind = payload.get("type", event.event)
        if kind == "message_start" and isinstance(payload.get("message"), dict):
            message = payload["message"]
            model = text_or_none(message.get("model")) or model
            _merge_counts(counts, message.get("usage"))
        elif kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict):
                stop_reason = text_or_none(delta.get("stop_reason")) or stop_reason
            if isinstance(payload.get("usage"), dict):
                _merge_counts(counts, payload["usage"])
                saw_final_counts = True
    return (_usage(counts) if saw_final_counts else None), model, stop_reason


def _merge_counts(counts: dict[str, Any], update: Any) -> None:
    if isinstance(update, dict):
        counts.update({field: value for field, value in update.items() if value is not None})


def _usage(raw_usage: Any) -> Usage | None:
    if not isinstance(raw_usage, dict) or not raw_usage:
        return None
    try:
        return usage_from_anthropic(raw_usage)
    except (KeyError, TypeError, ValueError):
        return None  # malformed counts: the gateway estimates and flags the record instead
