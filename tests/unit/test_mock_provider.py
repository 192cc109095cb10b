"""The mock provider speaks OpenAI's and Anthropic's formats well enough for the official SDKs."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

import anthropic
import openai
import pytest
from costbrake.local import mock_provider, mock_usage
from costbrake.local.mock_provider import MockProvider
from support.eventually import eventually
from support.raw_http import raw_post

USER_MESSAGE: Any = [{"role": "user", "content": "How much did the deep analysis feature cost last week?"}]


@pytest.fixture
def openai_client(mock: MockProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.base_url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def anthropic_client(mock: MockProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock.base_url, api_key="x", max_retries=0)


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
    openai_status, openai_error = raw_post(
        mock.base_url, "/v1/chat/completions", {"model": "m", "messages": USER_MESSAGE}, {}
    )
    anthropic_status, anthropic_error = raw_post(
        mock.base_url,
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
        mock.base_url,
        "/v1/messages",
        {"model": "m", "messages": USER_MESSAGE},
        {"x-api-key": "k", "anthropic-version": "1"},
    )

    assert status == 400
    assert error["error"]["type"] == "invalid_request_error"


def test_given_unknown_path_when_called_then_404_in_the_providers_error_shape(mock: MockProvider) -> None:
    openai_status, openai_error = raw_post(mock.base_url, "/v1/audio/speech", {}, {"authorization": "Bearer k"})
    anthropic_status, anthropic_error = raw_post(mock.base_url, "/v1/complete", {}, {"anthropic-version": "2023-06-01"})

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


# --- billing like the real provider ---


def byte_tokens(_dialect: str, text: str) -> int:
    """A stand-in reference tokenizer: one token per UTF-8 byte."""
    return len(text.encode("utf-8"))


def fake_pdf(pages: int) -> str:
    objects = b"".join(b"%d 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" % n for n in range(pages))
    return base64.b64encode(b"%PDF-1.4\n2 0 obj << /Type /Pages /Count 40 >> endobj\n" + objects).decode()


def png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return base64.b64encode(header).decode()


def test_given_a_token_counter_when_answered_then_it_bills_the_input_and_the_reply_by_it() -> None:
    text = "héllo wörld " * 10
    with MockProvider(count_tokens=byte_tokens) as provider:
        client = openai.OpenAI(base_url=provider.base_url + "/v1", api_key="x", max_retries=0)
        completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
        capped = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": text}], max_completion_tokens=25
        )

    assert completion.usage is not None and capped.usage is not None
    expected_input = mock_provider.MESSAGE_OVERHEAD_TOKENS + len(text.encode()) + mock_provider.REPLY_PRIMING_TOKENS
    assert completion.usage.prompt_tokens == expected_input
    assert completion.usage.completion_tokens == byte_tokens("openai", completion.choices[0].message.content or "")
    assert capped.usage.completion_tokens == 25 and capped.choices[0].finish_reason == "length"
    assert byte_tokens("openai", capped.choices[0].message.content or "") <= 25


def test_given_a_40_page_pdf_when_sent_to_either_provider_then_each_page_is_billed_far_above_its_base64_size(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    data = fake_pdf(40)
    document: Any = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}
    file_part: Any = {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{data}"}}

    message = anthropic_client.messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": [document]}]
    )
    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": [file_part]}]
    )

    pages_tokens = 40 * mock_usage.PDF_PAGE_TOKENS
    assert message.usage.input_tokens == mock_provider.MESSAGE_OVERHEAD_TOKENS + pages_tokens + 3
    assert completion.usage is not None and completion.usage.prompt_tokens >= pages_tokens
    assert pages_tokens > 10 * len(data) / mock_provider.CHARS_PER_TOKEN


def test_given_an_image_of_known_size_when_sent_then_each_provider_bills_it_by_its_own_formula(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    image: Any = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(1000, 1000)}}
    image_url: Any = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png(1000, 1000)}"}}
    low: Any = {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}

    claude = anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": [image]}]
    )
    gpt = openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [image_url]}])
    gpt_low = openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [low]}])

    assert claude.usage.input_tokens == 4 + 1_334 + 3  # ceil(1000 x 1000 / 750)
    assert gpt.usage is not None and gpt.usage.prompt_tokens == 4 + 85 + 170 * 4 + 3  # 768 x 768: 4 tiles
    assert gpt_low.usage is not None and gpt_low.usage.prompt_tokens == 4 + 85 + 3


def test_given_service_tiers_when_answered_then_they_are_reported_as_each_provider_reports_them(
    mock: MockProvider, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    priority = openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE, service_tier="priority")
    fast = openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE, service_tier="fast")
    default = openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)
    chunks = list(
        openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE, service_tier="flex", stream=True)
    )
    standard = anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=USER_MESSAGE, service_tier="standard_only"
    )

    assert (priority.service_tier, fast.service_tier, default.service_tier) == ("priority", "priority", "default")
    assert chunks and all(chunk.service_tier == "flex" for chunk in chunks)
    assert standard.usage.service_tier == "standard"
    assert [billed.service_tier for billed in mock.billed] == ["priority", "priority", "default", "flex", "standard"]


def test_given_anthropic_priority_capacity_when_auto_tier_then_usage_reports_priority() -> None:
    with MockProvider(anthropic_auto_tier="priority") as provider:
        client = anthropic.Anthropic(base_url=provider.base_url, api_key="x", max_retries=0)
        message = client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=USER_MESSAGE)

    assert message.usage.service_tier == "priority"


def test_given_a_web_search_tool_when_answered_then_searches_are_counted_and_their_results_billed_as_input() -> None:
    tool: Any = {"type": "web_search_20250305", "name": "web_search"}
    capped_tool: Any = {**tool, "max_uses": 2}
    with MockProvider(web_searches=5) as provider:
        client = anthropic.Anthropic(base_url=provider.base_url, api_key="x", max_retries=0)
        plain = client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=USER_MESSAGE)
        capped = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=5, messages=USER_MESSAGE, tools=[capped_tool]
        )
        free = client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=USER_MESSAGE, tools=[tool])
        searched = openai.OpenAI(
            base_url=provider.base_url + "/v1", api_key="x", max_retries=0
        ).chat.completions.create(model="gpt-4o-search-preview", messages=USER_MESSAGE, web_search_options={})
        billed = list(provider.billed)

    assert plain.usage.server_tool_use is None
    assert capped.usage.server_tool_use is not None and capped.usage.server_tool_use.web_search_requests == 2
    assert free.usage.server_tool_use is not None and free.usage.server_tool_use.web_search_requests == 5
    tool_tokens = capped.usage.input_tokens - plain.usage.input_tokens - 2 * mock_usage.WEB_SEARCH_RESULT_TOKENS
    assert 0 < tool_tokens < 100  # the tool definition's own text
    assert searched.usage is not None and searched.usage.prompt_tokens > mock_usage.WEB_SEARCH_RESULT_TOKENS
    assert billed[-1].usage["web_search_requests"] == 1


def test_given_a_cache_breakpoint_when_the_prefix_repeats_then_the_first_call_writes_and_the_second_reads(
    anthropic_client: anthropic.Anthropic,
) -> None:
    long_text = "Budget policy. " * 400  # 6,000 characters: 1,500 tokens
    system: Any = [{"type": "text", "text": long_text, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    request: Any = {"model": "claude-sonnet-4-5", "max_tokens": 5, "system": system, "messages": USER_MESSAGE}

    first = anthropic_client.messages.create(**request)
    second = anthropic_client.messages.create(**request)
    five_minutes = anthropic_client.messages.create(
        **{**request, "system": [{**system[0], "text": long_text + "!", "cache_control": {"type": "ephemeral"}}]}
    )

    prefix = mock_provider.MESSAGE_OVERHEAD_TOKENS + len(long_text) // 4
    assert first.usage.cache_creation_input_tokens == prefix and first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation is not None and first.usage.cache_creation.ephemeral_1h_input_tokens == prefix
    assert second.usage.cache_read_input_tokens == prefix and second.usage.cache_creation_input_tokens == 0
    assert first.usage.input_tokens == second.usage.input_tokens > 0
    assert five_minutes.usage.cache_creation is not None
    assert (
        five_minutes.usage.cache_creation.ephemeral_5m_input_tokens
        == five_minutes.usage.cache_creation_input_tokens
        > 0
    )


def test_given_a_short_prefix_with_a_breakpoint_when_repeated_then_nothing_is_cached(
    anthropic_client: anthropic.Anthropic,
) -> None:
    system: Any = [{"type": "text", "text": "Short.", "cache_control": {"type": "ephemeral"}}]

    usages = [
        anthropic_client.messages.create(
            model="claude-sonnet-4-5", max_tokens=5, system=system, messages=USER_MESSAGE
        ).usage
        for _ in range(2)
    ]

    assert all(u.cache_creation_input_tokens == 0 and u.cache_read_input_tokens == 0 for u in usages)


def test_given_a_long_openai_prompt_when_repeated_then_cached_tokens_are_reported_in_128_token_steps(
    openai_client: openai.OpenAI,
) -> None:
    messages: Any = [{"role": "user", "content": "Spend report line. " * 300}]  # 5,700 characters

    first = openai_client.chat.completions.create(model="gpt-4o", messages=messages)
    second = openai_client.chat.completions.create(model="gpt-4o", messages=messages)

    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens_details is not None and first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens if second.usage.prompt_tokens_details else None
    assert cached is not None and cached >= 1_024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens
    assert second.usage.prompt_tokens == first.usage.prompt_tokens


# --- faults and the billed ledger ---


def test_given_drop_connection_when_called_then_the_client_sees_a_broken_connection_and_the_call_is_billed(
    mock: MockProvider, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    mock.drop_connection_next()
    mock.drop_connection_next(after_bytes=200)

    with pytest.raises(openai.APIConnectionError):
        openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)
    with pytest.raises(anthropic.APIConnectionError):  # the status line and headers arrive, the body does not
        anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=USER_MESSAGE)

    assert [(billed.dialect, billed.model) for billed in mock.billed] == [
        ("openai", "gpt-4o"),
        ("anthropic", "claude-haiku-4-5"),
    ]
    assert len(mock.requests) == 2
    assert openai_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE).usage is not None


def test_given_a_delay_longer_than_the_client_timeout_when_called_then_the_generation_is_billed_anyway(
    mock: MockProvider,
) -> None:
    client = openai.OpenAI(base_url=mock.base_url + "/v1", api_key="x", max_retries=0, timeout=0.2)
    mock.delay_next(1.0)

    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)

    # The client gave up after 0.2 s; on a busy machine the mock may not have taken the request yet.
    (billed,) = eventually(lambda: list(mock.billed), timeout=5, what="the bill of the call the client left")
    assert billed.usage["completion_tokens"] >= mock_provider.MIN_OUTPUT_TOKENS
    assert billed.request_id.startswith("req_") and billed.service_tier == "default"


def test_given_refused_and_failed_calls_when_answered_then_only_generations_are_billed_with_the_reported_usage(
    mock: MockProvider, anthropic_client: anthropic.Anthropic
) -> None:
    mock.fail_next(529)
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER_MESSAGE)
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": ""}]
        )
    raw = anthropic_client.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=10, messages=USER_MESSAGE
    )

    assert len(mock.billed) == 1
    assert mock.billed[0].request_id == raw.headers["request-id"]
    assert mock.billed[0].usage == raw.parse().usage.model_dump(exclude_none=True)
    mock.reset()
    assert mock.billed == []
