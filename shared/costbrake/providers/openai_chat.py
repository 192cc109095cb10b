"""OpenAI chat completions upstream: POST /v1/chat/completions, plain JSON or SSE."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from costbrake.pricing import CHAT, usage_from_openai
from costbrake.providers.base import CHAT_COMPLETIONS, OPENAI, UpstreamResult
from costbrake.providers.sse import SseEvent, encode_sse_events, iter_sse_events, json_object, text_bytes, text_or_none
from costbrake.providers.transport import RawResponse, forwardable_headers
from costbrake.usage import Usage

_DONE = "[DONE]"


def openai_headers(api_key: str, extra_headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers of every OpenAI API call: the client's extra headers, then the gateway's own key."""
    return {
        **forwardable_headers(extra_headers),
        "authorization": f"Bearer {api_key}",
        "content-type": "application/json",
        "accept": "application/json",
    }


class OpenAIChatAdapter:
    name = OPENAI
    api = CHAT_COMPLETIONS
    path = "/v1/chat/completions"
    modes = (CHAT,)

    def upstream_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        upstream = dict(body)
        stream_options = upstream.get("stream_options")
        # Without include_usage a streamed answer carries no token counts at all.
        if upstream.get("stream") is True and isinstance(stream_options, Mapping | None):
            upstream["stream_options"] = {**(stream_options or {}), "include_usage": True}
        return upstream

    def upstream_headers(self, api_key: str, extra_headers: Mapping[str, str] | None) -> dict[str, str]:
        return openai_headers(api_key, extra_headers)

    def result(self, raw: RawResponse, client_body: Mapping[str, Any]) -> UpstreamResult:
        return _result(
            raw, client_wants_usage_chunk=_asks_for_usage_chunk(client_body), web_searches=web_searches(client_body)
        )

    def relays(self, event: bytes, client_body: Mapping[str, Any]) -> bool:
        """Whether a stream event goes on to the client: not the usage-only chunk costbrake asked for itself."""
        if _asks_for_usage_chunk(client_body) or b'"usage"' not in event:
            return True
        return not any(_is_usage_only_chunk(parsed) for parsed in iter_sse_events(event))

    def streamed_output_bytes(self, body: bytes) -> int:
        """UTF-8 bytes of the output a (partial) stream carried: each output token is at least one byte."""
        total = 0
        for chunk in _chunks(body):
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict):
                    total += text_bytes({name: value for name, value in delta.items() if name != "role"})
        return total


def web_searches(body: Mapping[str, Any]) -> int:
    """Web searches a chat completion makes, billed per use: a search model (``gpt-4o-search-preview``,
    ``gpt-5-search-api``) or ``web_search_options`` searches once per request; other requests never do."""
    model = body.get("model")
    searching = "web_search_options" in body or (isinstance(model, str) and "-search-" in f"{model}-")
    return 1 if searching else 0


def _asks_for_usage_chunk(body: Mapping[str, Any]) -> bool:
    stream_options = body.get("stream_options")
    return isinstance(stream_options, Mapping) and stream_options.get("include_usage") is True


def _result(raw: RawResponse, *, client_wants_usage_chunk: bool, web_searches: int = 0) -> UpstreamResult:
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    body = raw.body
    if 200 <= raw.status < 300:
        if raw.is_event_stream:
            usage, model, finish_reason = parse_openai_sse(body, web_searches=web_searches)
            if not client_wants_usage_chunk:
                body = without_usage_chunk(body)
        else:
            usage, model, finish_reason = _parse_completion(body, web_searches=web_searches)
    return UpstreamResult(
        status=raw.status,
        body=body,
        content_type=raw.content_type,
        usage=usage,
        served_model=model,
        finish_reason=finish_reason,
        request_id=raw.request_id,
    )


def _parse_completion(body: bytes, *, web_searches: int = 0) -> tuple[Usage | None, str | None, str | None]:
    try:
        completion = json.loads(body)
    except ValueError:
        return None, None, None
    if not isinstance(completion, dict):
        return None, None, None
    return (
        _usage(completion.get("usage"), completion.get("service_tier"), web_searches),
        text_or_none(completion.get("model")),
        _first_finish_reason(completion.get("choices")),
    )


def parse_openai_sse(body: bytes, *, web_searches: int = 0) -> tuple[Usage | None, str | None, str | None]:
    """(usage, model, finish_reason) of a complete chat.completion.chunk stream.

    Usage arrives only in the final chunk (``choices: []``) when ``stream_options.include_usage`` was set,
    and not at all if the stream was cut short. Every chunk repeats the ``service_tier`` the call is billed
    at; the last one named wins.
    """
    raw_usage: Any = None
    service_tier: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    for chunk in _chunks(body):
        model = text_or_none(chunk.get("model")) or model
        finish_reason = _first_finish_reason(chunk.get("choices")) or finish_reason
        service_tier = text_or_none(chunk.get("service_tier")) or service_tier
        if isinstance(chunk.get("usage"), dict):
            raw_usage = chunk["usage"]
    return _usage(raw_usage, service_tier, web_searches), model, finish_reason


def without_usage_chunk(body: bytes) -> bytes:
    """The stream as the client asked for it: without the usage-only chunk costbrake requested.

    A client that did not ask for it may read ``chunk.choices[0]`` on every chunk (the SDKs' own examples
    do), which fails on a chunk whose ``choices`` is empty.
    """
    events = list(iter_sse_events(body))
    kept = [event for event in events if not _is_usage_only_chunk(event)]
    return body if len(kept) == len(events) else encode_sse_events(kept)


def _is_usage_only_chunk(event: SseEvent) -> bool:
    chunk = json_object(event.data)
    return chunk is not None and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def _chunks(body: bytes) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    for event in iter_sse_events(body):
        if event.data.strip() == _DONE:
            break
        chunk = json_object(event.data)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def _first_finish_reason(choices: Any) -> str | None:
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
            return str(choice["finish_reason"])
    return None


def _usage(raw_usage: Any, service_tier: Any = None, web_searches: int = 0) -> Usage | None:
    if not isinstance(raw_usage, dict):
        return None
    try:
        return usage_from_openai(raw_usage, service_tier=service_tier, web_search_requests=web_searches)
    except (KeyError, TypeError, ValueError):
        return None  # malformed counts: the gateway estimates and flags the record instead
