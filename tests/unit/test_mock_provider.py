"""The mock provider speaks OpenAI's and Anthropic's formats well enough for the official SDKs."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from costbrake.local import mock_provider
from costbrake.local.mock_provider import MockProvider

USER_MESSAGE: Any = [{"role": "user", "content": "How much did the deep analysis feature cost last week?"}]


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


@pytest.fixture
def openai_client(mock: MockProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.base_url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def anthropic_client(mock: MockProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock.base_url, api_key="x", max_retries=0)


def raw_post(mock: MockProvider, path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    host, port = mock.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_given_openai_sdk_when_plain_completion_then_it_parses_usage_and_labelled_text(
    openai_client: openai.OpenAI,
) -> None:
    completion = openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)

    assert completion.model == "gpt-4o"
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    assert "costbrake mock provider" in (completion.choices[0].message.content or "")
    assert completion.usage is not None
    assert mock_provider.MIN_OUTPUT_TOKENS <= completion.usage.completion_tokens <= mock_provider.MAX_OUTPUT_TOKENS
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_given_openai_sdk_when_streamed_with_include_usage_then_text_and_usage_match_the_plain_answer(
    openai_client: openai.OpenAI,
) -> None:
    plain = openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)

    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o",
            messages=USER_MESSAGE,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage


def test_given_openai_stream_without_include_usage_then_no_chunk_carries_usage(
    openai_client: openai.OpenAI,
) -> None:
    chunks = list(openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE, stream=True))

    assert chunks and all(chunk.usage is None and chunk.choices for chunk in chunks)


def test_given_omit_usage_when_openai_stream_asks_for_usage_then_it_never_arrives(
    mock: MockProvider, openai_client: openai.OpenAI
) -> None:
    mock.omit_usage_next()

    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o",
            messages=USER_MESSAGE,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert all(chunk.usage is None for chunk in chunks)


def test_given_max_completion_tokens_below_the_answer_when_completed_then_it_is_capped_with_length(
    openai_client: openai.OpenAI,
) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-5-mini",
        messages=USER_MESSAGE,
        max_completion_tokens=3,
    )

    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert completion.choices[0].finish_reason == "length"


def test_given_anthropic_sdk_when_plain_message_then_it_parses_usage_and_labelled_text(
    anthropic_client: anthropic.Anthropic,
) -> None:
    message = anthropic_client.messages.create(
        model="claude-opus-4-5",
        max_tokens=1024,
        messages=USER_MESSAGE,
    )

    assert message.model == "claude-opus-4-5"
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert "costbrake mock provider" in message.content[0].text
    assert message.usage.cache_read_input_tokens == 0
    assert mock_provider.MIN_OUTPUT_TOKENS <= message.usage.output_tokens <= mock_provider.MAX_OUTPUT_TOKENS


def test_given_anthropic_sdk_when_streamed_then_the_final_message_matches_the_plain_one(
    anthropic_client: anthropic.Anthropic,
) -> None:
    request: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 1024, "messages": USER_MESSAGE}
    plain = anthropic_client.messages.create(**request)

    with anthropic_client.messages.stream(**request) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert streamed_text == plain.content[0].text
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.stop_reason == "end_turn"


def test_given_anthropic_max_tokens_below_the_answer_when_streamed_then_stop_reason_is_max_tokens(
    anthropic_client: anthropic.Anthropic,
) -> None:
    with anthropic_client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=4,
        messages=USER_MESSAGE,
    ) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 4


def test_given_a_long_prompt_when_counted_then_the_documented_token_rule_applies(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    text = "a" * 400
    expected = (
        mock_provider.MESSAGE_OVERHEAD_TOKENS
        + 400 // mock_provider.CHARS_PER_TOKEN
        + mock_provider.REPLY_PRIMING_TOKENS
    )

    completion = openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
    message = anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": text}]
    )

    assert completion.usage is not None and completion.usage.prompt_tokens == expected
    assert message.usage.input_tokens == expected


def test_given_the_same_request_twice_when_answered_then_usage_is_identical_and_another_prompt_differs(
    openai_client: openai.OpenAI,
) -> None:
    first = openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)
    again = openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)
    others = [
        openai_client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"question {n}"}]
        ).usage
        for n in range(5)
    ]

    assert first.usage == again.usage
    assert len({usage.completion_tokens for usage in others if usage is not None}) > 1


def test_given_fail_next_429_when_openai_sdk_calls_then_it_raises_rate_limit_once(
    mock: MockProvider, openai_client: openai.OpenAI
) -> None:
    mock.fail_next(429)

    with pytest.raises(openai.RateLimitError) as raised:
        openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)

    assert raised.value.code == "rate_limit_exceeded"
    assert openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE).usage is not None


def test_given_fail_next_529_twice_when_anthropic_sdk_calls_then_it_raises_overloaded_twice(
    mock: MockProvider, anthropic_client: anthropic.Anthropic
) -> None:
    mock.fail_next(529, times=2)

    for _ in range(2):
        with pytest.raises(anthropic.OverloadedError) as raised:
            anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER_MESSAGE)
        assert raised.value.status_code == 529

    assert anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER_MESSAGE).id


def test_given_delay_next_when_called_then_the_answer_waits(mock: MockProvider, openai_client: openai.OpenAI) -> None:
    mock.delay_next(0.3)
    started = time.monotonic()

    openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)

    assert time.monotonic() - started >= 0.3


def test_given_no_api_key_when_called_then_401_in_each_providers_error_shape(mock: MockProvider) -> None:
    openai_status, openai_error = raw_post(mock, "/v1/chat/completions", {"model": "m", "messages": USER_MESSAGE}, {})
    anthropic_status, anthropic_error = raw_post(
        mock,
        "/v1/messages",
        {"model": "m", "max_tokens": 5, "messages": USER_MESSAGE},
        {"anthropic-version": "1"},
    )

    assert openai_status == anthropic_status == 401
    assert openai_error["error"]["code"] == "invalid_api_key"
    assert anthropic_error["type"] == "error"
    assert anthropic_error["error"]["type"] == "authentication_error"


def test_given_anthropic_request_without_max_tokens_when_called_then_400(mock: MockProvider) -> None:
    status, error = raw_post(
        mock,
        "/v1/messages",
        {"model": "m", "messages": USER_MESSAGE},
        {"x-api-key": "k", "anthropic-version": "1"},
    )

    assert status == 400
    assert error["error"]["type"] == "invalid_request_error"


def test_given_unknown_path_when_called_then_404_in_the_providers_error_shape(mock: MockProvider) -> None:
    openai_status, openai_error = raw_post(mock, "/v1/embeddings", {}, {"authorization": "Bearer k"})
    anthropic_status, anthropic_error = raw_post(mock, "/v1/complete", {}, {"anthropic-version": "2023-06-01"})

    assert openai_status == anthropic_status == 404
    assert "error" in openai_error and "message" in openai_error["error"]
    assert anthropic_error["error"]["type"] == "not_found_error"


def test_given_sdk_calls_when_recorded_then_path_lowercased_headers_and_json_body_are_kept(
    mock: MockProvider, anthropic_client: anthropic.Anthropic
) -> None:
    anthropic_client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=10,
        messages=USER_MESSAGE,
        extra_body={"x_unknown": {"kept": True}},
    )

    recorded = mock.requests[-1]
    assert recorded.method == "POST"
    assert recorded.path == "/v1/messages"
    # This SDK generation sends the API key as a bearer token; older ones send x-api-key.
    assert recorded.headers.get("x-api-key") == "x" or recorded.headers.get("authorization") == "Bearer x"
    assert all(name == name.lower() for name in recorded.headers)
    assert recorded.body["x_unknown"] == {"kept": True}


def test_given_queued_faults_when_reset_then_requests_and_faults_are_cleared(
    mock: MockProvider, openai_client: openai.OpenAI
) -> None:
    openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)
    mock.fail_next(500)

    mock.reset()

    assert mock.requests == []
    assert openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE).usage is not None


def test_given_a_stopped_mock_when_called_then_the_connection_is_refused() -> None:
    provider = MockProvider()
    base_url = provider.start()
    provider.stop()
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0)

    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)
    with pytest.raises(RuntimeError):
        _ = provider.base_url
