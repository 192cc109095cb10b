"""Anthropic messages adapter against the loopback mock provider."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from costbrake.errors import ProviderFailed, ProviderTimeout
from costbrake.local.mock_provider import MockProvider
from costbrake.providers import UpstreamResult, adapter_for, parse_anthropic_sse
from costbrake.usage import Usage
from upstream import call_adapter

anthropic_adapter = adapter_for("anthropic")


def messages_body(**fields: Any) -> dict[str, Any]:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Summarise the budget."}],
        **fields,
    }


def call(mock: MockProvider, body: dict[str, Any], timeout: float = 5.0, **kwargs: Any) -> UpstreamResult:
    return call_adapter(
        anthropic_adapter, body, api_key="sk-ant-test", base_url=mock.base_url, timeout=timeout, **kwargs
    )


def sse(*payloads: dict[str, Any]) -> bytes:
    return b"".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n".encode() for p in payloads)


def test_given_plain_request_when_called_then_usage_model_and_stop_reason_come_from_the_answer(
    mock: MockProvider,
) -> None:
    result = call(mock, messages_body())

    answer = json.loads(result.body)
    assert result.status == 200
    assert result.usage == Usage(
        input_tokens=answer["usage"]["input_tokens"],
        output_tokens=answer["usage"]["output_tokens"],
        service_tier=answer["usage"]["service_tier"],
    )
    assert result.served_model == answer["model"] == "claude-haiku-4-5"
    assert result.finish_reason == answer["stop_reason"] == "end_turn"
    assert result.request_id is not None and result.request_id.startswith("req_")


def test_given_no_client_version_when_called_then_api_key_and_default_version_are_sent(
    mock: MockProvider,
) -> None:
    call(mock, messages_body())

    sent = mock.requests[-1].headers
    assert sent["x-api-key"] == "sk-ant-test"
    assert sent["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent


def test_given_client_version_and_beta_headers_when_called_then_they_are_forwarded_but_key_is_ours(
    mock: MockProvider,
) -> None:
    extra = {
        "anthropic-version": "2024-01-01",
        "anthropic-beta": "context-1m-2025-08-07",
        "x-api-key": "client",
    }

    call(mock, messages_body(), extra_headers=extra)

    sent = mock.requests[-1].headers
    assert sent["anthropic-version"] == "2024-01-01"
    assert sent["anthropic-beta"] == "context-1m-2025-08-07"
    assert sent["x-api-key"] == "sk-ant-test"


def test_given_unknown_fields_when_called_then_they_reach_the_provider_unchanged(mock: MockProvider) -> None:
    body = messages_body(
        metadata={"user_id": "u-1"}, thinking={"type": "enabled", "budget_tokens": 512}, x_future=[1, 2]
    )

    call(mock, body)

    assert mock.requests[-1].body == body
    assert anthropic_adapter.upstream_body(body) == body


def test_given_stream_request_when_called_then_usage_matches_the_plain_answer(mock: MockProvider) -> None:
    plain = call(mock, messages_body())

    streamed = call(mock, messages_body(stream=True))

    assert streamed.status == 200
    assert streamed.content_type.startswith("text/event-stream")
    assert streamed.usage is not None
    assert streamed.usage == plain.usage
    assert streamed.served_model == "claude-haiku-4-5"
    assert streamed.finish_reason == "end_turn"
    assert b"event: message_stop" in streamed.body


def test_given_low_max_tokens_when_streamed_then_stop_reason_is_max_tokens(mock: MockProvider) -> None:
    result = call(mock, messages_body(max_tokens=7, stream=True))

    assert result.finish_reason == "max_tokens"
    assert result.usage is not None and result.usage.output_tokens == 7


def test_given_upstream_overloaded_when_called_then_529_is_returned_without_usage(mock: MockProvider) -> None:
    mock.fail_next(529)

    result = call(mock, messages_body())

    assert result.status == 529
    assert json.loads(result.body)["error"]["type"] == "overloaded_error"
    assert result.usage is None


def test_given_upstream_500_when_called_then_status_500_is_returned(mock: MockProvider) -> None:
    mock.fail_next(500)

    result = call(mock, messages_body(stream=True))

    assert result.status == 500
    assert result.usage is None and result.finish_reason is None


def test_given_slow_upstream_when_called_then_provider_timeout_is_raised(mock: MockProvider) -> None:
    mock.delay_next(2.0)

    with pytest.raises(ProviderTimeout):
        call(mock, messages_body(), timeout=0.3)


def test_given_nothing_listening_when_called_then_provider_failed_is_raised() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(ProviderFailed) as raised:
        call_adapter(
            anthropic_adapter, messages_body(), api_key="k", base_url=f"http://127.0.0.1:{closed_port}", timeout=2
        )

    assert type(raised.value) is ProviderFailed


def test_given_stream_cut_before_message_delta_when_called_then_usage_is_none(mock: MockProvider) -> None:
    mock.omit_usage_next()

    result = call(mock, messages_body(stream=True))

    assert result.status == 200
    assert result.usage is None
    assert result.served_model == "claude-haiku-4-5"


def test_given_cumulative_deltas_when_parsed_then_latest_non_null_count_of_each_field_wins() -> None:
    body = sse(
        {
            "type": "message_start",
            "message": {
                "model": "claude-sonnet-4-5-20250929",
                "usage": {
                    "input_tokens": 12,
                    "cache_creation_input_tokens": 300,
                    "cache_read_input_tokens": 40,
                    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
                    "output_tokens": 1,
                },
            },
        },
        {"type": "ping"},
        {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 10}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"input_tokens": 15, "cache_read_input_tokens": None, "output_tokens": 25},
        },
        {"type": "message_stop"},
    )

    usage, model, stop_reason = parse_anthropic_sse(body)

    assert usage == Usage(
        input_tokens=15,
        output_tokens=25,
        cache_read_tokens=40,
        cache_write_5m_tokens=100,
        cache_write_1h_tokens=200,
    )
    assert model == "claude-sonnet-4-5-20250929"
    assert stop_reason == "tool_use"


def test_given_only_message_start_when_parsed_then_usage_is_none() -> None:
    body = sse({"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 5, "output_tokens": 1}}})

    assert parse_anthropic_sse(body) == (None, "m", None)


def test_given_error_event_mid_stream_when_parsed_then_nothing_is_invented() -> None:
    body = sse(
        {
            "type": "message_start",
            "message": {"model": "m", "usage": {"input_tokens": 5, "output_tokens": 1}},
        },
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )

    assert parse_anthropic_sse(body) == (None, "m", None)


def test_given_stream_with_tier_web_searches_and_1h_cache_writes_when_parsed_then_every_billed_dimension_is_kept():
    events = [
        {"type": "message_start", "message": {"model": "claude-opus-4-6", "usage": {
            "input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "service_tier": "priority"}}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {
            "output_tokens": 80, "server_tool_use": {"web_search_requests": 2}}},
    ]  # fmt: skip
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()

    usage, model, stop_reason = parse_anthropic_sse(body)

    assert usage == Usage(
        input_tokens=12,
        output_tokens=80,
        cache_write_5m_tokens=100,
        cache_write_1h_tokens=200,
        service_tier="priority",
        web_search_requests=2,
    )
    assert (model, stop_reason) == ("claude-opus-4-6", "end_turn")
