"""The OpenAI Responses API through costbrake with the official SDK: priced from its usage, bounded, refused
like chat calls; routes the gateway does not serve answer 404 in the provider's JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import anthropic
import openai
import pytest
from costbrake.operations.features import default_feature
from costbrake.pricing import PriceTable
from costbrake.records import Limits
from helpers import calls_of, cost_comment, hand_priced, open_reservations_of

QUESTION = "Summarise the plot of Hamlet in two sentences."
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ROOMY = Limits(hour_usd=Decimal("50"), day_usd=Decimal("50"), month_usd=Decimal("50"), rpm=1000)


@pytest.fixture
def roomy_feature(stack, user_id) -> str:
    """A feature whose input cap admits a whole context window (previous responses, web search results)."""
    feature = replace(default_feature(stack.settings, f"wide-{user_id}"), max_input_tokens=1_000_000)
    stack.stores.admin.put_feature(feature, "test", stack.clock.now())
    stack.gateway.forget_cached()
    return feature.name


def test_given_text_input_when_sdk_creates_a_response_then_cost_header_is_usage_times_the_price_table(
    stack, make_key, openai_client, user_id, mock
):
    client = openai_client(make_key(user_id))

    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini", input=QUESTION, instructions="Answer briefly.", max_output_tokens=80
    )
    response = raw.parse()

    assert response.output_text
    usage = response.usage
    cost = Decimal(raw.headers["x-costbrake-cost-usd"])
    assert cost == hand_priced("gpt-4o-mini", usage.input_tokens, usage.output_tokens) > 0
    assert raw.headers["x-costbrake-model"] == "gpt-4o-mini"
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert (record.status, record.cost_usd, record.input_tokens, record.output_tokens) == (
        "ok",
        cost,
        usage.input_tokens,
        usage.output_tokens,
    )
    assert record.reserved_usd >= cost and not record.usage_estimated
    assert mock.requests[-1].path == "/v1/responses"
    assert not open_reservations_of(stack, user_id)


def test_given_no_max_output_tokens_when_creating_a_response_then_the_feature_default_goes_upstream(
    make_key, openai_client, user_id, mock
):
    openai_client(make_key(user_id)).responses.create(model="gpt-4o-mini", input=QUESTION)

    sent = mock.requests[-1].body
    assert isinstance(sent["max_output_tokens"], int) and sent["max_output_tokens"] > 0


def test_given_a_reasoning_model_when_it_reasons_then_reasoning_tokens_are_priced_inside_the_output(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))

    raw = client.responses.with_raw_response.create(
        model="gpt-5-mini", input=QUESTION, reasoning={"effort": "low"}, max_output_tokens=2000
    )
    usage = raw.parse().usage

    assert usage.output_tokens_details.reasoning_tokens > 0
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert record.reasoning_tokens == usage.output_tokens_details.reasoning_tokens
    assert Decimal(raw.headers["x-costbrake-cost-usd"]) == hand_priced(
        "gpt-5-mini", usage.input_tokens, usage.output_tokens
    )


def test_given_stream_true_when_sdk_streams_a_response_then_events_pass_and_the_cost_comment_prices_its_usage(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))

    with client.responses.with_streaming_response.create(
        model="gpt-4o", input=QUESTION, max_output_tokens=120, stream=True
    ) as response:
        request_id = response.headers["x-costbrake-request-id"]
        lines = list(response.iter_lines())

    events = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    text = "".join(event["delta"] for event in events if event["type"] == "response.output_text.delta")
    usage = events[-1]["response"]["usage"]
    cost, commented_id = cost_comment(lines)
    assert text and commented_id == request_id
    assert cost == hand_priced("gpt-4o", usage["input_tokens"], usage["output_tokens"])
    record = stack.stores.calls.get_call(request_id)
    assert record.stream and record.cost_usd == cost and not record.usage_estimated
    assert not open_reservations_of(stack, user_id)


def test_given_the_sdk_stream_helper_when_it_accumulates_the_response_then_the_call_record_matches_it(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))

    with client.responses.stream(model="gpt-4.1-mini", input=QUESTION, max_output_tokens=200) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == final.output_text
    (record,) = calls_of(stack, user_id)
    assert (record.input_tokens, record.output_tokens) == (final.usage.input_tokens, final.usage.output_tokens)
    assert record.cost_usd == hand_priced("gpt-4.1-mini", final.usage.input_tokens, final.usage.output_tokens)


def test_given_a_function_tool_when_the_model_calls_it_and_gets_the_output_then_both_calls_are_priced(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))
    question = {"role": "user", "content": "What is the weather in Paris?"}

    first = client.responses.with_raw_response.create(
        model="gpt-4.1", input=[question], tools=[WEATHER_TOOL], max_output_tokens=100
    )
    call = first.parse().output[0]
    assert (call.type, call.name) == ("function_call", "get_weather")
    answer = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature_c": 21}'}
    second = client.responses.with_raw_response.create(
        model="gpt-4.1",
        input=[question, call.model_dump(exclude_none=True), answer],
        tools=[WEATHER_TOOL],
        max_output_tokens=100,
    )

    assert second.parse().output_text
    for raw in (first, second):
        usage = raw.parse().usage
        assert Decimal(raw.headers["x-costbrake-cost-usd"]) == hand_priced(
            "gpt-4.1", usage.input_tokens, usage.output_tokens
        )
    assert len(calls_of(stack, user_id)) == 2


def test_given_a_spent_budget_when_creating_responses_then_429_insufficient_quota_without_retry(
    stack, make_key, openai_client, request_log, mock, user_id
):
    limit = Decimal("0.01")
    client = openai_client(make_key(user_id, limits=Limits(hour_usd=limit, rpm=1000)))  # SDK default: 2 retries
    with pytest.raises(openai.RateLimitError):
        for _ in range(100):
            client.responses.create(model="gpt-4o", input=QUESTION, max_output_tokens=300)
    upstream_before, sent_before = len(mock.requests), len(request_log.requests)

    with pytest.raises(openai.RateLimitError) as refused:
        client.responses.create(model="gpt-4o", input=QUESTION, max_output_tokens=300)

    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert len(request_log.requests) == sent_before + 1 and len(mock.requests) == upstream_before
    assert sum(record.cost_usd for record in calls_of(stack, user_id)) <= limit
    assert not open_reservations_of(stack, user_id)


def test_given_a_previous_response_id_under_the_default_input_cap_then_413_names_the_context_window(
    make_key, openai_client, user_id, mock
):
    client = openai_client(make_key(user_id), max_retries=0)
    before = len(mock.requests)

    with pytest.raises(openai.APIStatusError) as refused:
        client.responses.create(model="gpt-4o", previous_response_id="resp_123", input="And then?")

    assert refused.value.status_code == 413
    assert "previous response" in refused.value.message and "context window" in refused.value.message
    assert len(mock.requests) == before


def test_given_a_feature_that_allows_the_context_window_when_continuing_a_response_then_the_window_is_reserved(
    stack, make_key, openai_client, user_id, roomy_feature
):
    client = openai_client(make_key(user_id, limits=ROOMY, feature=roomy_feature))
    first = client.responses.create(model="gpt-4o-mini", input=QUESTION, max_output_tokens=60)

    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini", previous_response_id=first.id, input="And then?", max_output_tokens=60
    )

    usage = raw.parse().usage
    assert usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens  # the context was billed
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert record.estimated_input_tokens >= PriceTable.default().get("gpt-4o-mini").max_input_tokens
    assert record.cost_usd == hand_priced("gpt-4o-mini", usage.input_tokens, usage.output_tokens)


def test_given_a_web_search_tool_when_it_searches_then_each_search_is_charged_at_the_models_price(
    stack, make_key, openai_client, user_id, roomy_feature, mock
):
    client = openai_client(make_key(user_id, limits=ROOMY, feature=roomy_feature))

    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini", input="Latest costbrake news?", tools=[{"type": "web_search"}], max_output_tokens=100
    )

    response = raw.parse()
    searches = sum(1 for item in response.output if item.type == "web_search_call")
    assert searches == mock.requests[-1].body["max_tool_calls"] == 3  # set by costbrake: the bound
    price = PriceTable.default().get("gpt-4o-mini")
    expected = hand_priced("gpt-4o-mini", response.usage.input_tokens, response.usage.output_tokens)
    assert Decimal(raw.headers["x-costbrake-cost-usd"]) == expected + searches * price.web_search_price


@pytest.mark.parametrize(
    ("tool", "why"),
    [({"type": "file_search", "vector_store_ids": ["vs_1"]}, "file_search"), ({"type": "image_generation"}, "image")],
)
def test_given_a_built_in_tool_costbrake_cannot_price_then_400_and_nothing_upstream(
    make_key, openai_client, user_id, mock, tool, why
):
    client = openai_client(make_key(user_id), max_retries=0)
    before = len(mock.requests)

    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt-4.1", input=QUESTION, tools=[tool], max_output_tokens=50)

    assert why in refused.value.message and refused.value.param == "tools"
    assert len(mock.requests) == before


def test_given_an_embedding_model_on_the_responses_route_then_400_names_the_embeddings_route(
    make_key, openai_client, user_id
):
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(make_key(user_id)).responses.create(model="text-embedding-3-small", input=QUESTION)

    assert "/v1/embeddings" in refused.value.message


def test_given_routes_costbrake_does_not_serve_when_sdks_call_them_then_not_found_names_the_route(
    make_key, openai_client, anthropic_client, user_id
):
    key = make_key(user_id)

    with pytest.raises(openai.NotFoundError) as stored:
        openai_client(key).responses.retrieve("resp_abc")
    with pytest.raises(openai.NotFoundError) as files:
        openai_client(key).files.list()
    with pytest.raises(anthropic.NotFoundError) as batches:
        anthropic_client(key).messages.batches.list()

    assert "GET /v1/responses/resp_abc" in stored.value.message
    assert "GET /v1/files" in files.value.message
    assert batches.value.body["error"]["type"] == "not_found_error"
    assert "GET /v1/messages/batches" in batches.value.body["error"]["message"]
