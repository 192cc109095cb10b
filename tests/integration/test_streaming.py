"""Streams pass through as they arrive, end with their cost, and stop the spend when the client leaves (issue 9).

The mock provider trickles its events (``slow_stream_next``); the official SDKs read them through the local
gateway app, which relays each event as it arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import anthropic
import httpx2 as httpx
import openai
import pytest
from costbrake.pricing import PriceTable
from helpers import calls_of, cost_comment, hand_priced, open_reservations_of
from support.eventually import eventually

PROMPT = [{"role": "user", "content": "Tell a long story about budgets."}]
GAP = 0.1  # seconds between two upstream events
REPLY_TOKENS = 120  # 30 events of 4 words: a 3-second stream


@pytest.fixture
def slow_stream(mock) -> Iterator[Callable[[float, int], None]]:
    def slow(gap: float = GAP, tokens: int = REPLY_TOKENS) -> None:
        mock.reply_tokens = tokens
        mock.slow_stream_next(gap)

    yield slow
    mock.reply_tokens = None


@pytest.fixture(scope="module")
def patient_gateway(serve_gateway) -> Iterator[str]:
    """The same ledger and provider behind a gateway with production-sized provider timeouts."""
    with serve_gateway(provider_timeout_seconds=120.0, provider_idle_timeout_seconds=5.0) as (url, _):
        yield url


@pytest.fixture
def gpt(patient_gateway, make_key, user_id) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{patient_gateway}/v1", api_key=make_key(user_id), max_retries=0)


def test_given_a_3_second_stream_when_the_openai_sdk_reads_it_then_the_first_token_arrives_long_before_the_last(
    stack, gpt, user_id, slow_stream
):
    client = gpt
    slow_stream()
    started = time.monotonic()
    arrivals = []

    stream = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=500, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)

    assert arrivals[0] < 1.0, arrivals[:3]  # time to first token: the gateway did not wait for the end
    assert arrivals[-1] >= 2.5, arrivals[-3:]
    (record,) = calls_of(stack, user_id)
    assert record.stream and not record.usage_estimated and record.output_tokens == REPLY_TOKENS


def test_given_a_3_second_stream_when_the_anthropic_sdk_reads_it_then_the_first_token_arrives_long_before_the_last(
    stack, patient_gateway, make_key, user_id, slow_stream
):
    client = anthropic.Anthropic(base_url=patient_gateway, api_key=make_key(user_id), max_retries=0)
    slow_stream()
    started = time.monotonic()
    arrivals = []

    with client.messages.stream(model="claude-haiku-4-5", max_tokens=500, messages=PROMPT) as stream:
        for _ in stream.text_stream:
            arrivals.append(time.monotonic() - started)
        final = stream.get_final_message()

    assert arrivals[0] < 1.0, arrivals[:3]
    assert arrivals[-1] >= 2.5, arrivals[-3:]
    (record,) = calls_of(stack, user_id)
    assert record.cost_usd == hand_priced("claude-haiku-4-5", final.usage.input_tokens, final.usage.output_tokens)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": PROMPT, "max_tokens": 60, "stream": True}),
        ("/v1/messages", {"model": "claude-haiku-4-5", "messages": PROMPT, "max_tokens": 60, "stream": True}),
    ],
    ids=["openai", "anthropic"],
)
def test_given_a_stream_when_it_ends_then_its_last_line_is_an_sse_comment_with_the_cost_of_the_call(
    stack, make_key, user_id, path, body
):
    key = make_key(user_id)

    with httpx.stream("POST", f"{stack.url}{path}", json=body, headers={"x-api-key": key}, timeout=30) as response:
        lines = list(response.iter_lines())

    cost, request_id = cost_comment(lines)
    assert request_id == response.headers["x-costbrake-request-id"]
    record = stack.stores.calls.get_call(request_id)
    assert record.cost_usd == cost > 0 and not record.usage_estimated
    call = httpx.get(f"{stack.url}/v1/calls/{request_id}", headers={"x-api-key": key}).json()
    assert Decimal(call["cost_usd"]) == cost and call["usage"]["output_tokens"] == record.output_tokens


def test_given_a_client_that_leaves_mid_stream_then_the_upstream_stops_and_the_call_is_charged_what_it_carried(
    stack, gpt, user_id, mock, slow_stream
):
    client = gpt
    slow_stream(gap=0.2, tokens=200)  # 50 events over 10 seconds
    streams_before = len(mock.streamed)

    stream = client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=500, stream=True)
    request_id = stream.response.headers["x-costbrake-request-id"]
    read = [chunk for _, chunk in zip(range(3), stream, strict=False)]
    stream.close()  # the user closed the tab
    left_at = time.monotonic()

    record = eventually(lambda: stack.stores.calls.get_call(request_id))
    (upstream,) = eventually(lambda: mock.streamed[streams_before:])
    assert time.monotonic() - left_at < 5  # noticed within a few events, not at the stream's end (10 s)
    assert upstream.events_sent < upstream.events_total / 2  # the provider stopped generating
    assert len(read) == 3
    assert record.finish_reason == "client_disconnected" and record.usage_estimated
    assert 0 < record.cost_usd < record.reserved_usd  # charged, never free, never the whole worst case
    assert record.output_tokens <= upstream.events_sent * 4 * 10  # at most what the events sent could hold
    assert not open_reservations_of(stack, user_id)


def test_given_a_stream_longer_than_api_gateways_old_29_second_limit_then_it_completes_and_is_priced(
    stack, gpt, user_id, slow_stream
):
    client = gpt
    slow_stream(gap=0.5, tokens=4 * 62)  # 62 events, 31 seconds
    started = time.monotonic()

    stream = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=1000, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert time.monotonic() - started > 29
    assert len(text.split()) >= 4 * 62 - 4
    (record,) = calls_of(stack, user_id)
    assert record.status == "ok" and not record.usage_estimated and record.finish_reason == "stop"
    assert record.cost_usd == hand_priced("gpt-4o-mini", record.input_tokens, record.output_tokens)


def test_given_a_priority_stream_its_client_leaves_then_it_is_charged_at_the_priority_rate_it_was_reserved_at(
    stack, gpt, user_id, mock, slow_stream
):
    slow_stream(gap=0.2, tokens=200)
    before = len(mock.billed)

    stream = gpt.chat.completions.create(
        model="gpt-4o", messages=PROMPT, max_tokens=500, stream=True, service_tier="priority"
    )
    request_id = stream.response.headers["x-costbrake-request-id"]
    list(zip(range(2), stream, strict=False))
    stream.close()

    record = eventually(lambda: stack.stores.calls.get_call(request_id))
    (billed,) = mock.billed[before:]
    priority = PriceTable.default().get("gpt-4o").tier_rates("priority").rates
    assert billed.service_tier == "priority"
    assert record.cost_usd >= billed.usage["prompt_tokens"] * priority.input  # never below the provider's bill
    assert record.cost_usd <= record.reserved_usd


def test_given_a_provider_connection_that_breaks_mid_stream_then_the_call_is_charged_its_worst_case(
    stack, gpt, user_id, mock
):
    mock.drop_connection_next(after_bytes=600)  # the status line, headers and a few events, then nothing

    # The status line was sent already: the client sees the stream end early, then the cost comment (with error=).
    with httpx.stream(
        "POST",
        f"{gpt.base_url}chat/completions",
        json={"model": "gpt-4o", "messages": PROMPT, "max_tokens": 300, "stream": True},
        headers={"authorization": f"Bearer {gpt.api_key}"},
        timeout=30,
    ) as response:
        lines = list(response.iter_lines())

    assert lines[-2].startswith(": costbrake cost_usd=") and "error=" in lines[-2]

    (record,) = eventually(lambda: calls_of(stack, user_id))
    assert record.status == "error" and record.usage_estimated
    assert record.cost_usd == record.reserved_usd > 0  # it may have generated everything: never free
    assert not open_reservations_of(stack, user_id)
