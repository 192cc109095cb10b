"""The official SDKs, unchanged, against the local gateway: answers, exact cost headers, call records."""

from __future__ import annotations

from decimal import Decimal

from helpers import calls_of, hand_priced, open_reservations_of

PROMPT = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}]


def test_given_user_key_when_openai_sdk_completes_then_cost_header_matches_price_table(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=80)
    completion = raw.parse()

    assert completion.choices[0].message.content
    usage = completion.usage
    cost = Decimal(raw.headers["x-costbrake-cost-usd"])
    assert cost == hand_priced("gpt-4o-mini", usage.prompt_tokens, usage.completion_tokens) > 0
    assert raw.headers["x-costbrake-model"] == "gpt-4o-mini"
    assert Decimal(raw.headers["x-costbrake-budget-remaining-usd"]) < Decimal("1")  # free tier: $1/hour
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert (record.user_id, record.status, record.cost_usd) == (user_id, "ok", cost)
    assert (record.input_tokens, record.output_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert record.reserved_usd >= cost
    assert not open_reservations_of(stack, user_id)


def test_given_stream_with_include_usage_when_openai_sdk_streams_then_usage_arrives_and_is_priced(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id))

    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=PROMPT, max_tokens=60, stream=True, stream_options={"include_usage": True}
    ) as response:
        request_id = response.headers["x-costbrake-request-id"]
        chunks = list(response.parse())
    cost = Decimal(client.get(f"/calls/{request_id}", cast_to=object)["cost_usd"])  # type: ignore[index]

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    usage = chunks[-1].usage
    assert text and usage is not None
    assert cost == hand_priced("gpt-4o", usage.prompt_tokens, usage.completion_tokens)
    record = stack.stores.calls.get_call(request_id)
    assert record.stream and record.cost_usd == cost and not record.usage_estimated


def test_given_plain_stream_when_openai_sdk_streams_then_gateway_still_prices_it_from_upstream_usage(
    stack, make_key, openai_client, user_id, mock
):
    client = openai_client(make_key(user_id))

    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=PROMPT, max_tokens=60, stream=True
    ) as response:
        request_id = response.headers["x-costbrake-request-id"]
        chunks = list(response.parse())

    assert mock.requests[-1].body["stream_options"] == {"include_usage": True}  # asked upstream anyway
    assert all(chunk.choices for chunk in chunks)  # the usage-only chunk the client did not ask for is not passed on
    record = stack.stores.calls.get_call(request_id)
    assert record.output_tokens > 0 and not record.usage_estimated
    assert record.cost_usd == hand_priced("gpt-4o", record.input_tokens, record.output_tokens)


def test_given_user_key_when_anthropic_sdk_creates_message_then_cost_matches_price_table(
    stack, make_key, anthropic_client, user_id
):
    client = anthropic_client(make_key(user_id))

    raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=64, messages=PROMPT)
    message = raw.parse()

    assert message.content[0].text
    cost = Decimal(raw.headers["x-costbrake-cost-usd"])
    assert cost == hand_priced("claude-haiku-4-5", message.usage.input_tokens, message.usage.output_tokens) > 0
    assert calls_of(stack, user_id)[0].cost_usd == cost


def test_given_stream_when_anthropic_sdk_streams_then_cumulative_usage_is_priced(
    stack, make_key, anthropic_client, user_id
):
    client = anthropic_client(make_key(user_id))

    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=PROMPT) as stream:
        final = stream.get_final_message()
        headers = stream.response.headers

    assert final.content[0].text
    call = client.get(f"/v1/calls/{headers['x-costbrake-request-id']}", cast_to=object)
    cost = Decimal(call["cost_usd"])  # type: ignore[index]
    assert cost == hand_priced("claude-sonnet-4-5", final.usage.input_tokens, final.usage.output_tokens)
    assert stack.stores.calls.get_call(headers["x-costbrake-request-id"]).cost_usd == cost


def test_given_any_key_when_listing_models_then_priced_models_are_listed(make_key, openai_client, user_id):
    models = {model.id for model in openai_client(make_key(user_id)).models.list()}

    assert {"gpt-4o", "claude-sonnet-4-5", "o3"} <= models


def test_given_service_key_when_naming_end_user_then_that_user_is_charged(stack, make_key, openai_client, user_id):
    client = openai_client(make_key(service=True))

    client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=20, user=user_id)

    assert len(calls_of(stack, user_id)) == 1


def test_given_budget_endpoint_when_called_then_windows_show_limits_and_spend(stack, make_key, openai_client, user_id):
    key = make_key(user_id)
    openai_client(key).chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=20)

    budget = openai_client(key).get("/budget", cast_to=object)

    windows = {(w["scope"], w["window"]): w for w in budget["windows"]}
    hour = windows[(f"user {user_id}", "hour")]
    assert Decimal(hour["limit_usd"]) == Decimal("1")
    assert Decimal(hour["spent_usd"]) == calls_of(stack, user_id)[0].cost_usd
    assert Decimal(hour["reserved_usd"]) == 0
