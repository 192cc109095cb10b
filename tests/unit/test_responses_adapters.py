"""The Responses, embeddings and count_tokens adapters: usage read from real answer shapes, one registry by API."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

import pytest
from costbrake.pricing import CHAT, EMBEDDING, RESPONSES, PriceTable, cost_of
from costbrake.providers import adapter_for
from costbrake.providers.base import (
    CHAT_COMPLETIONS,
    COUNT_TOKENS,
    EMBEDDINGS,
    MESSAGES,
)
from costbrake.providers.base import RESPONSES as RESPONSES_API
from costbrake.providers.transport import RawResponse

responses_adapter = adapter_for(RESPONSES_API)
embeddings_adapter = adapter_for(EMBEDDINGS)
JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream; charset=utf-8"}
USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 200},
    "total_tokens": 1500,
}


def response(**extra: Any) -> dict[str, Any]:
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "hi"}],
    }
    return {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-5-2025-08-07",
        "status": "completed",
        "incomplete_details": None,
        "service_tier": "default",
        "output": [{"type": "reasoning", "id": "rs_1", "summary": []}, message],
        "usage": USAGE,
        **extra,
    }


def events(*payloads: dict[str, Any]) -> bytes:
    return b"".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n".encode() for p in payloads)


def test_given_api_names_and_provider_names_when_adapters_are_requested_then_one_registry_serves_both():
    assert {adapter_for(api).api for api in (CHAT_COMPLETIONS, RESPONSES_API, EMBEDDINGS, MESSAGES, COUNT_TOKENS)} == {
        CHAT_COMPLETIONS,
        RESPONSES_API,
        EMBEDDINGS,
        MESSAGES,
        COUNT_TOKENS,
    }
    assert adapter_for("openai").api == CHAT_COMPLETIONS and adapter_for("anthropic").api == MESSAGES
    assert adapter_for(RESPONSES_API).modes == (CHAT, RESPONSES) and adapter_for(EMBEDDINGS).modes == (EMBEDDING,)
    assert adapter_for(COUNT_TOKENS).path == "/v1/messages/count_tokens"
    with pytest.raises(ValueError, match=r"openai\.images"):
        adapter_for("openai.images")


def test_given_a_response_when_read_then_cached_and_reasoning_tokens_are_split_as_chat_completions_are():
    result = responses_adapter.result(RawResponse(200, JSON, json.dumps(response()).encode()), {})

    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.cache_read_tokens) == (176, 1024)
    assert (result.usage.output_tokens, result.usage.reasoning_tokens) == (300, 200)
    assert result.usage.service_tier == "standard"
    assert (result.served_model, result.finish_reason) == ("gpt-5-2025-08-07", "completed")


def test_given_web_search_calls_and_priority_when_priced_then_each_search_and_the_tier_are_billed():
    searches = [{"type": "web_search_call", "id": f"ws_{n}", "status": "completed"} for n in range(2)]
    body = response(service_tier="priority", output=[*searches, response()["output"][1]])

    usage = responses_adapter.result(RawResponse(200, JSON, json.dumps(body).encode()), {}).usage

    assert usage is not None and usage.web_search_requests == 2 and usage.service_tier == "priority"
    price = PriceTable.default().get("gpt-5")
    rates = price.rates_for(1200, "priority")
    expected = 176 * rates.input + 1024 * rates.cache_read + 300 * rates.output + 2 * price.web_search_price
    assert cost_of(price, usage) == expected == Decimal("0.026696")


def test_given_an_incomplete_response_then_its_reason_is_the_finish_reason():
    body = response(status="incomplete", incomplete_details={"reason": "max_output_tokens"})

    result = responses_adapter.result(RawResponse(200, JSON, json.dumps(body).encode()), {})

    assert result.finish_reason == "max_output_tokens" and result.usage is not None


@pytest.mark.parametrize("final", ["response.completed", "response.incomplete", "response.failed"])
def test_given_a_stream_when_it_ends_then_the_usage_comes_from_its_last_lifecycle_event(final):
    opening = {**response(), "status": "in_progress", "usage": None, "output": []}
    body = events(
        {"type": "response.created", "response": opening},
        {"type": "response.output_text.delta", "output_index": 1, "item_id": "msg_1", "delta": "hi"},
        {"type": final, "response": response()},
    )

    result = responses_adapter.result(RawResponse(200, SSE, body), {"stream": True})

    assert result.usage is not None and result.usage.output_tokens == 300
    assert result.body == body  # relayed untouched


def test_given_a_stream_cut_before_its_end_then_no_usage_and_its_visible_deltas_are_counted():
    opening = {**response(), "status": "in_progress", "usage": None, "output": []}
    body = events(
        {"type": "response.created", "response": opening},
        {"type": "response.output_text.delta", "output_index": 0, "item_id": "msg_1", "delta": "héllo"},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "item_id": "fc_1", "delta": "{}"},
    )

    assert responses_adapter.result(RawResponse(200, SSE, body), {}).usage is None
    assert responses_adapter.streamed_output_bytes(body) == len("héllo".encode()) + 2


def test_given_a_cut_stream_that_was_reasoning_then_its_output_is_unknown_and_left_to_the_bound():
    item = {"type": "reasoning", "id": "rs_1", "summary": []}
    body = events({"type": "response.output_item.added", "output_index": 0, "item": item})

    assert responses_adapter.streamed_output_bytes(body) == sys.maxsize


def test_given_an_embeddings_answer_then_prompt_tokens_are_its_input_and_malformed_usage_is_none():
    answer = {"object": "list", "data": [], "model": "text-embedding-3-small", "usage": {"prompt_tokens": 42}}

    result = embeddings_adapter.result(RawResponse(200, JSON, json.dumps(answer).encode()), {})
    broken = embeddings_adapter.result(RawResponse(200, JSON, b'{"usage": {"prompt_tokens": -1}}'), {})

    assert result.usage is not None and (result.usage.input_tokens, result.usage.output_tokens) == (42, 0)
    assert result.served_model == "text-embedding-3-small"
    assert broken.usage is None


def test_given_upstream_headers_then_the_gateways_key_replaces_the_clients():
    headers = responses_adapter.upstream_headers("sk-gateway", {"authorization": "Bearer client", "openai-beta": "x"})

    assert headers["authorization"] == "Bearer sk-gateway" and headers["openai-beta"] == "x"
    assert adapter_for(COUNT_TOKENS).upstream_headers("sk-ant", None)["x-api-key"] == "sk-ant"
