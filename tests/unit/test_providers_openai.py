"""OpenAI chat completions adapter against the loopback mock provider."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from costbrake.errors import ProviderFailed, ProviderTimeout
from costbrake.local.mock_provider import MockProvider
from costbrake.providers import UpstreamResult, adapter_for, parse_openai_sse
from costbrake.providers.openai_chat import web_searches
from costbrake.providers.sse import iter_sse_events
from upstream import call_adapter

openai_adapter = adapter_for("openai")


def chat_body(**fields: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Summarise the budget."}],
        **fields,
    }


def call(mock: MockProvider, body: dict[str, Any], timeout: float = 5.0, **kwargs: Any) -> UpstreamResult:
    return call_adapter(openai_adapter, body, api_key="sk-test", base_url=mock.base_url, timeout=timeout, **kwargs)


def sse_chunks(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(event.data) for event in iter_sse_events(body) if event.data != "[DONE]"]


def test_given_plain_request_when_called_then_usage_model_and_finish_reason_come_from_the_answer(
    mock: MockProvider,
) -> None:
    result = call(mock, chat_body())

    answer = json.loads(result.body)
    assert result.status == 200
    assert result.content_type.startswith("application/json")
    assert result.usage is not None
    assert result.usage.input_tokens == answer["usage"]["prompt_tokens"]
    assert result.usage.output_tokens == answer["usage"]["completion_tokens"]
    assert result.served_model == answer["model"] == "gpt-4o-mini"
    assert result.finish_reason == answer["choices"][0]["finish_reason"] == "stop"
    assert result.request_id is not None and result.request_id.startswith("req_")


def test_given_client_key_when_called_then_bearer_token_is_sent_and_cannot_be_overridden(
    mock: MockProvider,
) -> None:
    call(mock, chat_body(), extra_headers={"Authorization": "Bearer client-costbrake-key", "X-Trace": "t1"})

    sent = mock.requests[-1].headers
    assert sent["authorization"] == "Bearer sk-test"
    assert sent["x-trace"] == "t1"


def test_given_unknown_fields_when_called_then_they_reach_the_provider_unchanged(mock: MockProvider) -> None:
    body = chat_body(user="user-7", metadata={"ticket": "T-1"}, x_future_field=[1, {"nested": True}], temperature=0.2)

    call(mock, body)

    assert mock.requests[-1].body == body
    assert mock.requests[-1].path == "/v1/chat/completions"


def test_given_stream_request_when_upstream_body_built_then_include_usage_is_added_and_options_kept() -> None:
    body = chat_body(stream=True, stream_options={"include_obfuscation": False})

    upstream = openai_adapter.upstream_body(body)

    assert upstream["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert body["stream_options"] == {"include_obfuscation": False}  # the client's body is not mutated


def test_given_plain_request_when_upstream_body_built_then_no_stream_options_are_added() -> None:
    assert openai_adapter.upstream_body(chat_body()) == chat_body()


def test_given_stream_request_when_called_then_usage_arrives_and_matches_the_plain_answer(
    mock: MockProvider,
) -> None:
    plain = call(mock, chat_body())

    streamed = call(mock, chat_body(stream=True))

    assert mock.requests[-1].body["stream_options"] == {"include_usage": True}
    assert streamed.status == 200
    assert streamed.content_type.startswith("text/event-stream")
    assert streamed.usage is not None
    assert streamed.usage == plain.usage  # the mock is deterministic per request
    assert streamed.served_model == "gpt-4o-mini"
    assert streamed.finish_reason == "stop"
    assert streamed.body.rstrip().endswith(b"data: [DONE]")


def test_given_client_did_not_ask_for_usage_when_streamed_then_the_usage_only_chunk_is_not_returned(
    mock: MockProvider,
) -> None:
    result = call(mock, chat_body(stream=True))

    chunks = sse_chunks(result.body)
    assert result.usage is not None
    assert chunks and all(chunk["choices"] for chunk in chunks)


def test_given_client_asked_for_usage_when_streamed_then_the_usage_chunk_is_returned(
    mock: MockProvider,
) -> None:
    result = call(mock, chat_body(stream=True, stream_options={"include_usage": True}))

    final = sse_chunks(result.body)[-1]
    assert result.usage is not None
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] == result.usage.output_tokens


def test_given_low_max_tokens_when_called_then_finish_reason_is_length(mock: MockProvider) -> None:
    result = call(mock, chat_body(max_completion_tokens=5))

    assert result.finish_reason == "length"
    assert result.usage is not None and result.usage.output_tokens == 5


def test_given_base_url_with_v1_suffix_when_called_then_path_is_not_doubled(mock: MockProvider) -> None:
    result = call_adapter(openai_adapter, chat_body(), api_key="k", base_url=mock.base_url + "/v1/", timeout=5)

    assert result.status == 200
    assert mock.requests[-1].path == "/v1/chat/completions"


def test_given_upstream_500_when_called_then_status_and_error_body_are_returned_without_usage(
    mock: MockProvider,
) -> None:
    mock.fail_next(500)

    result = call(mock, chat_body())

    assert result.status == 500
    assert json.loads(result.body)["error"]["type"] == "server_error"
    assert result.usage is None
    assert result.served_model is None


def test_given_slow_upstream_when_called_then_provider_timeout_is_raised(mock: MockProvider) -> None:
    mock.delay_next(2.0)

    with pytest.raises(ProviderTimeout):
        call(mock, chat_body(), timeout=0.3)


def test_given_stream_trickling_past_the_deadline_when_called_then_provider_timeout_is_raised_on_time(
    mock: MockProvider,
) -> None:
    mock.slow_stream_next(0.05)  # each read is quick; the whole answer takes seconds
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        call(mock, chat_body(stream=True), timeout=0.5)

    assert time.monotonic() - started < 1.5


def test_given_a_timed_out_call_when_called_again_then_the_pooled_connection_still_works(
    mock: MockProvider,
) -> None:
    mock.slow_stream_next(0.05)
    with pytest.raises(ProviderTimeout):
        call(mock, chat_body(stream=True), timeout=0.3)

    result = call(mock, chat_body())

    assert result.status == 200 and result.usage is not None


def test_given_nothing_listening_when_called_then_provider_failed_is_raised() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(ProviderFailed) as raised:
        call_adapter(openai_adapter, chat_body(), api_key="k", base_url=f"http://127.0.0.1:{closed_port}", timeout=2)

    assert type(raised.value) is ProviderFailed  # a refusal, not a timeout


def test_given_stream_without_usage_when_called_then_usage_is_none_but_finish_reason_is_known(
    mock: MockProvider,
) -> None:
    mock.omit_usage_next()

    result = call(mock, chat_body(stream=True))

    assert result.status == 200
    assert result.usage is None
    assert result.finish_reason == "stop"


def test_given_crlf_stream_cut_before_done_when_parsed_then_usage_chunk_is_still_read() -> None:
    body = (
        b'data: {"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Hi"},'
        b'"finish_reason":null}],"usage":null}\r\n\r\n'
        b'data: {"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],'
        b'"usage":null}\r\n\r\n'
        b'data: {"model":"gpt-4o-2024-08-06","choices":[],'
        b'"usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":100},'
        b'"completion_tokens_details":{"reasoning_tokens":12}}}\r\n\r\n'
    )

    usage, model, finish_reason = parse_openai_sse(body)

    assert usage is not None
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        20,
        100,
        30,
        12,
    )
    assert model == "gpt-4o-2024-08-06"
    assert finish_reason == "tool_calls"


def test_given_stream_with_only_deltas_when_parsed_then_usage_is_none() -> None:
    body = b'data: {"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'

    assert parse_openai_sse(body) == (None, "m", None)


def test_given_unknown_provider_when_adapter_requested_then_value_error() -> None:
    with pytest.raises(ValueError, match="gemini"):
        adapter_for("gemini")


def test_given_stream_chunks_with_service_tier_when_parsed_then_the_billed_tier_is_kept() -> None:
    chunks = [
        {"model": "gpt-5", "service_tier": "priority", "choices": [{"delta": {"content": "hi"}}]},
        {"model": "gpt-5", "service_tier": "priority", "choices": [{"delta": {}, "finish_reason": "stop"}]},
        {"model": "gpt-5", "service_tier": "priority", "choices": [],
         "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
    ]  # fmt: skip
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks).encode() + b"data: [DONE]\n\n"

    usage, model, finish_reason = parse_openai_sse(body)

    assert usage is not None and usage.service_tier == "priority"
    assert (usage.input_tokens, usage.output_tokens, model, finish_reason) == (10, 2, "gpt-5", "stop")


def test_given_plain_answer_when_called_then_the_reported_default_tier_is_standard(mock: MockProvider) -> None:
    result = call(mock, chat_body())

    assert result.usage is not None and result.usage.service_tier == "standard"
    assert result.usage.web_search_requests == 0


@pytest.mark.parametrize(
    ("body", "searches"),
    [
        ({"model": "gpt-4o-search-preview"}, 1),
        ({"model": "gpt-5-search-api-2025-10-14"}, 1),
        ({"model": "gpt-4o", "web_search_options": {}}, 1),
        ({"model": "gpt-4o"}, 0),
        ({"model": "research-gpt"}, 0),
    ],
)
def test_given_search_model_or_web_search_options_when_called_then_one_search_is_billed(
    body: dict[str, Any], searches: int
) -> None:
    assert web_searches(body) == searches
