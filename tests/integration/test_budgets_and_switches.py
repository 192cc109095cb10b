"""Spent budgets refuse with a 429 the SDKs do not retry; kill-switches refuse or downgrade."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import anthropic
import openai
import pytest
from costbrake.operations import set_switch
from costbrake.records import Limits, SwitchState
from helpers import calls_of, hand_priced, open_reservations_of, user_windows

PROMPT = [{"role": "user", "content": "Write a haiku about budgets."}]


def until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_given_spent_hour_budget_when_sdk_calls_then_429_insufficient_quota_without_retry(
    stack, make_key, openai_client, request_log, mock, user_id
):
    limit = Decimal("0.01")
    client = openai_client(make_key(user_id, limits=Limits(hour_usd=limit, rpm=1000)))  # SDK default: 2 retries
    admitted = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(100):
            client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=300)
            admitted += 1
    upstream_before = len(mock.requests)
    sent_before = len(request_log.requests)

    with pytest.raises(openai.RateLimitError) as again:
        client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=300)

    assert admitted >= 1
    assert len(request_log.requests) == sent_before + 1  # the SDK did not retry
    assert len(mock.requests) == upstream_before  # nothing went upstream
    error = again.value
    assert error.code == "insufficient_quota" and refused.value.code == "insufficient_quota"
    assert error.response.headers["x-should-retry"] == "false"
    assert 0 < int(error.response.headers["retry-after"]) <= 3600
    assert error.response.headers["x-costbrake-limit-window"] == "hour"
    settled = sum(record.cost_usd for record in calls_of(stack, user_id))
    assert settled <= limit
    assert not open_reservations_of(stack, user_id)


def test_given_rpm_limit_when_exceeded_then_429_rate_limit_exceeded(make_key, anthropic_client, user_id):
    client = anthropic_client(make_key(user_id, limits=Limits(rpm=2)), max_retries=0)
    for _ in range(2):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=PROMPT)

    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=PROMPT)

    assert refused.value.body["error"]["type"] == "rate_limit_error"
    assert refused.value.response.headers["x-costbrake-limit-window"] == "minute"
    assert 0 < int(refused.value.response.headers["retry-after"]) <= 60


def test_given_feature_switched_off_when_called_then_403_with_reason_and_back_on_works(
    stack, make_key, openai_client, user_id, mock
):
    feature = f"feat-{uuid.uuid4().hex[:8]}"
    client = openai_client(make_key(user_id, feature=feature))
    client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=10)
    set_switch(stack.ledger, stack.clock, stack.settings, feature, SwitchState.OFF, "runaway loop", "pytest")

    def refused() -> bool:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=10)
        except openai.PermissionDeniedError as error:
            return "runaway loop" in error.message
        return False

    assert until(refused), "the flip did not take effect within seconds"
    calls_after_flip = len(mock.requests)
    assert refused() and len(mock.requests) == calls_after_flip  # an off feature sends nothing upstream
    set_switch(stack.ledger, stack.clock, stack.settings, feature, SwitchState.ON, "fixed", "pytest")
    assert until(lambda: not refused())
    history = stack.ledger.switch_history(feature)
    assert [(h["from"], h["to"], h["actor"]) for h in history] == [("on", "off", "pytest"), ("off", "on", "pytest")]


def test_given_feature_in_downgrade_when_sonnet_requested_then_haiku_serves_and_says_so(
    stack, make_key, anthropic_client, user_id, mock
):
    feature = f"feat-{uuid.uuid4().hex[:8]}"
    client = anthropic_client(make_key(user_id, feature=feature))
    set_switch(stack.ledger, stack.clock, stack.settings, feature, SwitchState.DOWNGRADE, "95% of budget", "pytest")
    time.sleep(stack.settings.settings_cache_seconds)  # a flip reaches warm gateways within their cache time

    raw = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=40, messages=PROMPT)
    message = raw.parse()

    assert message.model == "claude-haiku-4-5"
    assert mock.requests[-1].body["model"] == "claude-haiku-4-5"
    assert raw.headers["x-costbrake-model"] == "claude-haiku-4-5"
    assert raw.headers["x-costbrake-downgraded-from"] == "claude-sonnet-4-5"
    cost = Decimal(raw.headers["x-costbrake-cost-usd"])
    assert cost == hand_priced("claude-haiku-4-5", message.usage.input_tokens, message.usage.output_tokens)
    record = calls_of(stack, user_id)[0]
    assert (record.model_requested, record.model, record.downgraded_from) == (
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
    )


def test_given_auto_model_with_complexity_hint_then_class_model_serves(make_key, openai_client, user_id):
    client = openai_client(make_key(user_id))

    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=PROMPT, max_tokens=10, extra_headers={"X-Costbrake-Complexity": "simple"}
    )

    assert raw.headers["x-costbrake-model"] == "gpt-4o-mini"
    assert raw.parse().model == "gpt-4o-mini"


def test_given_user_windows_after_calls_then_nothing_stays_reserved(stack, make_key, openai_client, user_id):
    client = openai_client(make_key(user_id))
    for _ in range(3):
        client.chat.completions.create(model="gpt-4.1-mini", messages=PROMPT, max_tokens=30)

    for window in user_windows(stack, user_id):
        assert Decimal(window["reserved_usd"]) == 0
        assert Decimal(window["spent_usd"]) == sum(r.cost_usd for r in calls_of(stack, user_id))
