"""The mock provider's chat APIs in the real formats: OpenAI chat completions and Anthropic Messages, JSON and
server-sent events, billed as ``mock_provider`` describes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from costbrake.local.mock_completions import Completion
from costbrake.local.mock_http import Reply, anthropic_events, json_reply, openai_events, request_id, stream_reply
from costbrake.local.mock_usage import WEB_SEARCH_RESULT_TOKENS, anthropic_input, openai_input

if TYPE_CHECKING:
    from costbrake.local.mock_provider import MockProvider

SYSTEM_FINGERPRINT = "fp_costbrake_mock"
# OpenAI reports the tier that served the request: auto -> default, fast -> priority.
_OPENAI_SERVED_TIER = {"auto": "default", "fast": "priority"}


class ChatMocks:
    """Chat completions and Messages for a ``MockProvider`` (its counter, prompt cache, clock and ledger)."""

    def __init__(self, mock: MockProvider) -> None:
        self._mock = mock

    def openai_reply(self, body: Mapping[str, Any], *, streamed: bool, omit_usage: bool) -> Reply:
        mock = self._mock
        prompt = openai_input(body, mock._count)
        searches = 1 if "search" in str(body["model"]) else 0  # the search models search on every request
        completion = mock._complete(
            "openai",
            body,
            prompt,
            searches * WEB_SEARCH_RESULT_TOKENS,
            _first_int(body, "max_completion_tokens", "max_tokens"),
        )
        reply_id = request_id()
        headers = {"x-request-id": reply_id, "openai-processing-ms": "1", "x-costbrake-mock": "true"}
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        created = int(mock._clock.now().timestamp())
        finish_reason = "length" if completion.truncated else "stop"
        usage = _openai_usage(completion, cached=mock._cache.openai(completion.model, prompt))
        requested = str(body.get("service_tier") or "auto")
        tier = _OPENAI_SERVED_TIER.get(requested, requested)
        mock._bill(
            reply_id,
            "openai",
            completion.model,
            {**usage, **({"web_search_requests": searches} if searches else {})},
            tier,
        )
        if not streamed:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": completion.text,
                "refusal": None,
                "annotations": [],
            }
            payload = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": completion.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
                "usage": usage,
                "service_tier": tier,
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
            return json_reply(200, payload, headers)

        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, Mapping) and stream_options.get("include_usage") is True
        common = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": completion.model,
            "service_tier": tier,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        pieces = completion.pieces()
        events = openai_events(common, pieces, finish_reason, usage, include_usage=include_usage, omit=omit_usage)
        return stream_reply(events, headers)

    def anthropic_reply(self, body: Mapping[str, Any], *, streamed: bool, omit_usage: bool) -> Reply:
        mock = self._mock
        prompt = anthropic_input(body, mock._count)
        search_tools = [t for t in body.get("tools") or () if str(t.get("type", "")).startswith("web_search_")]
        searches = min([mock._web_searches] + [int(t["max_uses"]) for t in search_tools if t.get("max_uses")])
        searches = searches if search_tools else 0
        completion = mock._complete(
            "anthropic", body, prompt, searches * WEB_SEARCH_RESULT_TOKENS, _first_int(body, "max_tokens")
        )
        cache = mock._cache.anthropic(completion.model, prompt)
        reply_id = request_id()
        headers = {"request-id": reply_id, "x-costbrake-mock": "true"}
        stop_reason = "max_tokens" if completion.truncated else "end_turn"
        tier = "standard" if body.get("service_tier") == "standard_only" else mock._anthropic_auto_tier
        usage: dict[str, Any] = {
            "input_tokens": completion.input_tokens - cache.read - cache.write,
            "cache_creation_input_tokens": cache.write,
            "cache_read_input_tokens": cache.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache.write_5m,
                "ephemeral_1h_input_tokens": cache.write_1h,
            },
            "output_tokens": completion.output_tokens,
            **({"server_tool_use": {"web_search_requests": searches, "web_fetch_requests": 0}} if search_tools else {}),
            "service_tier": tier,
        }
        mock._bill(reply_id, "anthropic", completion.model, usage, tier)
        content = [{"type": "text", "text": completion.text}] if completion.words else []
        message: dict[str, Any] = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        if not streamed:
            return json_reply(200, message, headers)

        events = anthropic_events(message, completion.pieces(), omit_usage=omit_usage)
        return stream_reply(events, headers)


def _openai_usage(completion: Completion, *, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": completion.input_tokens,
        "completion_tokens": completion.output_tokens,
        "total_tokens": completion.input_tokens + completion.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _first_int(body: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
