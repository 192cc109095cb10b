"""A call whose Lambda dies after reserving holds budget until the sweeper releases it."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import openai
import pytest
from costbrake.clock import ManualClock
from costbrake.pipeline.sweeper import sweep
from costbrake.pricing import PriceTable, worst_case_cost
from costbrake.records import Limits
from costbrake.tokens import estimate_openai_input_tokens
from helpers import open_reservations_of

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 500}


def test_given_call_killed_after_reserving_when_swept_after_expiry_then_budget_is_usable_again(
    stack, make_key, openai_client, user_id
):
    tokens = estimate_openai_input_tokens(BODY).tokens
    worst = worst_case_cost(PriceTable.default().get("gpt-4o"), tokens, 500, service_tier="default")  # as reserved
    key = make_key(user_id, limits=Limits(hour_usd=worst * 101 / 100, rpm=100))
    client = openai_client(key, max_retries=0)
    # A Lambda killed after reserving: the reservation is made, and nothing ever settles it.
    stack.gateway.admit("openai", json.dumps(BODY).encode(), {"authorization": f"Bearer {key}"}, uuid.uuid4().hex)
    assert len(open_reservations_of(stack, user_id)) == 1
    with pytest.raises(openai.RateLimitError) as busy:  # the dead call's reservation still holds the budget
        client.chat.completions.create(**BODY)
    assert busy.value.code == "budget_busy"  # held, not spent: a retry after the sweep can succeed

    early = sweep(stack.stores.reservations, stack.clock)
    later = ManualClock(stack.clock.now() + timedelta(seconds=stack.settings.reservation_ttl_seconds + 1))
    swept = sweep(stack.stores.reservations, later)

    assert early.released == 0 and swept.released >= 1
    assert not open_reservations_of(stack, user_id)
    assert client.chat.completions.create(**BODY).choices[0].message.content
