"""Provider failures are recorded: refunded when the provider bills nothing, charged when it may have generated;
an unreachable ledger refuses before anything is sent."""

from __future__ import annotations

from decimal import Decimal

import httpx2 as httpx
import openai
import pytest
from helpers import assert_nothing_spent_or_held, calls_of, open_reservations_of

PROMPT = [{"role": "user", "content": "hello"}]


def test_given_provider_500_when_called_then_502_refund_and_error_record(stack, make_key, openai_client, mock, user_id):
    client = openai_client(make_key(user_id), max_retries=0)
    mock.fail_next(500)

    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=100)

    assert failed.value.status_code == 502
    assert_nothing_spent_or_held(stack, user_id)
    (record,) = calls_of(stack, user_id)
    assert (record.status, record.http_status, record.cost_usd) == ("error", 500, Decimal(0))
    assert record.reserved_usd > 0


def test_given_provider_timeout_when_called_then_504_charged_the_worst_case_and_error_record(
    stack, make_key, anthropic_client, mock, user_id
):
    import anthropic

    client = anthropic_client(make_key(user_id), max_retries=0)
    mock.delay_next(stack.settings.provider_timeout_seconds + 1.5)

    with pytest.raises(anthropic.APIStatusError) as failed:
        client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=PROMPT)

    assert failed.value.status_code == 504
    assert failed.value.body["error"]["type"] == "api_error"
    # The request was sent: the provider may have generated up to the worst case, so that is charged.
    (record,) = calls_of(stack, user_id)
    assert (record.status, record.http_status, record.usage_estimated) == ("error", 504, True)
    assert record.cost_usd == record.reserved_usd > 0
    assert not open_reservations_of(stack, user_id)


def test_given_unreachable_ledger_when_called_then_503_and_nothing_sent_upstream(
    serve_gateway, make_key, mock, user_id
):
    key = make_key(user_id)
    upstream_before = len(mock.requests)
    dead = {"dynamodb_endpoint_url": "http://127.0.0.1:9", "settings_cache_seconds": 0}
    with serve_gateway(own_stores=True, **dead) as (url, _):
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": PROMPT, "max_tokens": 5},
            headers={"x-api-key": key},
            timeout=30,
        )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ledger_unavailable"
    assert len(mock.requests) == upstream_before


def test_given_stream_whose_usage_never_arrives_then_record_is_flagged_and_charged_the_worst_case(
    stack, make_key, anthropic_client, mock, user_id
):
    client = anthropic_client(make_key(user_id), max_retries=0)
    mock.omit_usage_next()

    with client.messages.with_streaming_response.create(
        model="claude-haiku-4-5", max_tokens=200, messages=PROMPT, stream=True
    ) as response:
        request_id = response.headers["x-costbrake-request-id"]
        list(response.iter_lines())

    record = stack.stores.calls.get_call(request_id)
    assert record.usage_estimated and record.status == "ok"
    assert (record.input_tokens, record.output_tokens) == (record.estimated_input_tokens, 200)
    assert record.cost_usd == record.reserved_usd  # never less than what the call could have cost
