"""Embeddings (reserved from the input bound, priced by prompt_tokens) and Anthropic's count_tokens (free, but
one request of the user's rate limit) through costbrake with the official SDKs."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import openai
import pytest
from costbrake.pricing import PriceTable
from costbrake.records import Limits
from helpers import calls_of, open_reservations_of, user_windows

TEXTS = ["Budgets stop cost explosions.", "Per-user caps bound the first hour.", "Alerts catch trends."]
MESSAGES = [{"role": "user", "content": "How many tokens is this message?"}]


def input_priced(model: str, tokens: int) -> Decimal:
    return PriceTable.default().get(model).rates.input * tokens


def test_given_texts_when_sdk_creates_embeddings_then_cost_is_prompt_tokens_times_the_input_price(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))

    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=TEXTS, dimensions=256)
    answer = raw.parse()

    assert [len(item.embedding) for item in answer.data] == [256, 256, 256]
    cost = Decimal(raw.headers["x-costbrake-cost-usd"])
    assert cost == input_priced("text-embedding-3-small", answer.usage.prompt_tokens) > 0
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (answer.usage.prompt_tokens, 0, cost)
    assert record.estimated_input_tokens >= answer.usage.prompt_tokens  # the reservation's bound held
    assert not open_reservations_of(stack, user_id)


def test_given_token_arrays_when_embedding_then_the_reservation_counts_them_exactly(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))
    tokens = [[9906, 1917, 0], [15339, 374, 264, 1296]]

    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-large", input=tokens)

    assert raw.parse().usage.prompt_tokens == 7
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert record.estimated_input_tokens == 7
    assert record.cost_usd == input_priced("text-embedding-3-large", 7)


def test_given_the_same_text_twice_when_embedded_then_the_vectors_are_deterministic(make_key, openai_client, user_id):
    client = openai_client(make_key(user_id))

    first, second = (client.embeddings.create(model="text-embedding-3-small", input=TEXTS[0]) for _ in range(2))

    assert first.data[0].embedding == second.data[0].embedding
    assert len(first.data[0].embedding) == 1536


@pytest.mark.parametrize(("route", "model"), [("embeddings", "gpt-4o-mini"), ("chat", "text-embedding-3-small")])
def test_given_a_model_of_the_wrong_kind_for_the_route_then_400_and_nothing_upstream(
    make_key, openai_client, user_id, mock, route, model
):
    client = openai_client(make_key(user_id), max_retries=0)
    before = len(mock.requests)

    with pytest.raises(openai.BadRequestError) as refused:
        if route == "embeddings":
            client.embeddings.create(model=model, input=TEXTS)
        else:
            client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=10)

    assert refused.value.param == "model" and model in refused.value.message
    assert len(mock.requests) == before


def test_given_count_tokens_when_called_then_the_providers_answer_comes_back_and_nothing_is_charged(
    stack, make_key, anthropic_client, user_id, mock
):
    client = anthropic_client(make_key(user_id))

    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=MESSAGES, system="Be brief.")
    raw = client.messages.with_raw_response.count_tokens(model="claude-sonnet-4-5", messages=MESSAGES)

    assert counted.input_tokens > raw.parse().input_tokens > 0
    assert raw.headers["x-costbrake-cost-usd"] == "0"
    assert mock.requests[-1].path == "/v1/messages/count_tokens"
    assert not calls_of(stack, user_id)
    for window in user_windows(stack, user_id):
        assert Decimal(window["spent_usd"]) == Decimal(window["reserved_usd"]) == 0, window
    assert not open_reservations_of(stack, user_id)


def test_given_an_rpm_limit_when_count_tokens_used_it_up_then_the_next_call_is_rate_limited(
    make_key, anthropic_client, user_id
):
    client = anthropic_client(make_key(user_id, limits=Limits(rpm=2)), max_retries=0)
    for _ in range(2):
        client.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)

    with pytest.raises(anthropic.RateLimitError) as counted:
        client.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)
    with pytest.raises(anthropic.RateLimitError) as created:
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)

    for refused in (counted.value, created.value):
        assert refused.body["error"]["type"] == "rate_limit_error"
        assert refused.response.headers["x-costbrake-limit-window"] == "minute"


def test_given_a_bad_key_when_counting_tokens_then_401_in_anthropics_error_json(anthropic_client, mock):
    before = len(mock.requests)

    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic_client("cb-not-a-key").messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)

    assert refused.value.body["error"]["type"] == "authentication_error"
    assert len(mock.requests) == before


def test_given_an_invalid_count_tokens_body_when_forwarded_then_the_providers_400_comes_back_as_is(
    make_key, anthropic_client, user_id
):
    client = anthropic_client(make_key(user_id), max_retries=0)

    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.count_tokens(
            model="claude-haiku-4-5", messages=MESSAGES, thinking={"type": "enabled", "budget_tokens": 10}
        )

    assert "budget_tokens" in refused.value.message


@pytest.mark.parametrize("model", ["gpt-4o", "claude-no-such-model"])
def test_given_a_model_anthropic_does_not_serve_when_counting_tokens_then_400_and_nothing_forwarded_or_counted(
    make_key, anthropic_client, user_id, mock, model
):
    client = anthropic_client(make_key(user_id, limits=Limits(rpm=1)), max_retries=0)
    before = len(mock.requests)

    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.count_tokens(model=model, messages=MESSAGES)

    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert len(mock.requests) == before
    client.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)  # the refusal used no request
