"""Spent budgets refuse with a 429 the SDKs do not retry; kill-switches refuse or downgrade."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import anthropic
import openai
import pytest
from costbrake.keys import hash_key
from costbrake.operations.features import switch_feature
from costbrake.operations.users import block_user
from costbrake.records import CounterRef, Limits, SwitchState, UserProfile
from costbrake.windows import Window, span
from helpers import calls_of, hand_priced, open_reservations_of, user_windows
from support.eventually import eventually

PROMPT = [{"role": "user", "content": "Write a haiku about budgets."}]


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
    switch_feature(
        stack.stores.admin, stack.clock, stack.settings, feature, SwitchState.OFF, "runaway loop", "pytest", create=True
    )

    def refused() -> bool:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=10)
        except openai.PermissionDeniedError as error:
            return "runaway loop" in error.message
        return False

    # Warm gateways see the flip within their cache time (1 s here): no flush, that is what is tested.
    eventually(refused, timeout=5, interval=0.1, what="the flip to off reaching the gateway")
    calls_after_flip = len(mock.requests)
    assert refused() and len(mock.requests) == calls_after_flip  # an off feature sends nothing upstream
    switch_feature(
        stack.stores.admin, stack.clock, stack.settings, feature, SwitchState.ON, "fixed", "pytest", create=True
    )
    eventually(lambda: not refused(), timeout=5, interval=0.1, what="the flip back on reaching the gateway")
    history = stack.stores.admin.switch_history(feature)
    assert [(h["from"], h["to"], h["actor"]) for h in history] == [("on", "off", "pytest"), ("off", "on", "pytest")]


def test_given_feature_in_downgrade_when_sonnet_requested_then_haiku_serves_and_says_so(
    stack, make_key, anthropic_client, user_id, mock
):
    feature = f"feat-{uuid.uuid4().hex[:8]}"
    client = anthropic_client(make_key(user_id, feature=feature))
    switch_feature(
        stack.stores.admin,
        stack.clock,
        stack.settings,
        feature,
        SwitchState.DOWNGRADE,
        "95% of budget",
        "pytest",
        create=True,
    )
    stack.gateway.forget_cached()  # the gateway reads the change now, not after its cache time

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


def test_given_auto_model_with_complexity_hint_then_class_model_serves(stack, make_key, openai_client, user_id):
    client = openai_client(make_key(user_id))

    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=PROMPT, max_tokens=10, extra_headers={"X-Costbrake-Complexity": "simple"}
    )

    simple = stack.settings.auto_models["openai"]["simple"]
    assert raw.headers["x-costbrake-model"] == simple
    assert raw.parse().model == simple


def test_given_user_windows_after_calls_then_nothing_stays_reserved(stack, make_key, openai_client, user_id):
    client = openai_client(make_key(user_id))
    for _ in range(3):
        client.chat.completions.create(model="gpt-4.1-mini", messages=PROMPT, max_tokens=30)

    for window in user_windows(stack, user_id):
        assert Decimal(window["reserved_usd"]) == 0
        assert Decimal(window["spent_usd"]) == sum(r.cost_usd for r in calls_of(stack, user_id))


# ---- features are the operator's: a key charges only the features it names ------------------------------


def feature_name() -> str:
    return f"feat-{uuid.uuid4().hex[:8]}"


def test_given_key_listing_features_when_header_names_another_then_403_from_both_sdks_and_nothing_upstream(
    stack, make_key, openai_client, anthropic_client, user_id, mock
):
    mine, other = feature_name(), feature_name()
    secret = make_key(user_id, features=[mine, other])
    sent = len(mock.requests)

    for named in ("chat", "made-up", "default"):
        with pytest.raises(openai.PermissionDeniedError) as by_openai:
            openai_client(secret, max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=PROMPT, max_tokens=10, extra_headers={"X-Costbrake-Feature": named}
            )
        with pytest.raises(anthropic.PermissionDeniedError) as by_anthropic:
            anthropic_client(secret, max_retries=0).messages.create(
                model="claude-haiku-4-5", max_tokens=10, messages=PROMPT, extra_headers={"X-Costbrake-Feature": named}
            )
        assert f"may not charge feature '{named}'" in by_openai.value.message
        assert f"'{mine}', '{other}'" in by_openai.value.message  # names what the key may charge
        assert by_anthropic.value.body["error"]["type"] == "permission_error"

    assert len(mock.requests) == sent
    assert calls_of(stack, user_id) == []


def test_given_header_in_another_spelling_when_called_then_charged_to_the_canonical_feature_and_its_switch_holds(
    stack, make_key, openai_client, user_id
):
    mine = feature_name()
    client = openai_client(make_key(user_id, features=["chat", mine]), max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=PROMPT, max_tokens=10, extra_headers={"X-Costbrake-Feature": mine.upper()}
    )
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert record is not None and record.feature == mine

    switch_feature(
        stack.stores.admin, stack.clock, stack.settings, mine, SwitchState.OFF, "runaway loop", "pytest", create=True
    )

    def refused(spelling: str) -> bool:
        try:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=PROMPT, max_tokens=10, extra_headers={"X-Costbrake-Feature": spelling}
            )
        except openai.PermissionDeniedError as error:
            return "runaway loop" in error.message
        return False

    stack.gateway.forget_cached()  # the flip's propagation is tested above: here, how the feature is spelled
    assert refused(mine)
    # (Surrounding whitespace is canonicalised too, but the SDKs' HTTP client will not send it in a header.)
    for spelling in (mine.upper(), mine.capitalize(), mine.swapcase()):
        assert refused(spelling), spelling
    # The key's other feature is the operator's choice, not an escape hatch the caller invents.
    client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, max_tokens=10, extra_headers={"X-Costbrake-Feature": "CHAT"}
    )


def test_given_any_feature_key_when_header_names_an_unconfigured_feature_then_403_unknown_feature(
    make_key, openai_client, anthropic_client, user_id
):
    secret = make_key(user_id, any_feature=True)

    with pytest.raises(openai.PermissionDeniedError, match="Unknown feature 'made-up-"):
        openai_client(secret, max_retries=0).chat.completions.create(
            model="gpt-4o-mini",
            messages=PROMPT,
            max_tokens=10,
            extra_headers={"X-Costbrake-Feature": feature_name().replace("feat", "made-up")},
        )
    anthropic_client(secret, max_retries=0).messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=PROMPT, extra_headers={"X-Costbrake-Feature": "Chat"}
    )


def test_given_header_that_is_no_feature_name_when_called_then_400_before_anything_is_charged(
    stack, make_key, openai_client, user_id
):
    client = openai_client(make_key(user_id, any_feature=True), max_retries=0)

    for bad in ("x" * 2048, "deep analysis", "chat/../admin"):
        with pytest.raises(openai.BadRequestError, match="X-Costbrake-Feature"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=PROMPT, max_tokens=10, extra_headers={"X-Costbrake-Feature": bad}
            )

    assert calls_of(stack, user_id) == []


# ---- service keys: end-user ids are canonical, and the key itself is bounded ----------------------------


def test_given_blocked_user_when_a_service_key_names_them_in_another_spelling_then_still_blocked(
    stack, make_key, openai_client, anthropic_client, mock
):
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    stack.stores.admin.put_user(UserProfile(victim, "free"))
    block_user(stack.stores.admin, stack.clock, victim, stack.clock.now() + timedelta(hours=1), "abuse", "pytest")
    secret = make_key(service=True, features=["chat"])
    openai_sdk, anthropic_sdk = openai_client(secret, max_retries=0), anthropic_client(secret, max_retries=0)
    sent = len(mock.requests)

    for spelling in (victim, victim.upper(), f"{victim} ", f" {victim.capitalize()}"):
        with pytest.raises(openai.PermissionDeniedError, match="abuse"):
            openai_sdk.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=10, user=spelling)
        with pytest.raises(anthropic.PermissionDeniedError, match="abuse"):
            anthropic_sdk.messages.create(
                model="claude-haiku-4-5", max_tokens=10, messages=PROMPT, metadata={"user_id": spelling}
            )
    with pytest.raises(openai.BadRequestError) as invisible:
        openai_sdk.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=10, user=f"{victim}\u200b")
    with pytest.raises(anthropic.BadRequestError) as bidi:
        anthropic_sdk.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=PROMPT, metadata={"user_id": f"\u202e{victim}"}
        )

    assert invisible.value.param == "user" and "U+200B" in invisible.value.message
    assert "metadata.user_id" in bidi.value.message and "U+202E" in bidi.value.message
    assert len(mock.requests) == sent
    assert [r for r in stack.stores.calls.scan_calls() if victim in r.user_id] == []


def test_given_service_key_with_an_hour_budget_when_spent_across_invented_user_ids_then_refused(
    stack, make_key, openai_client
):
    limit = Decimal("0.01")
    secret = make_key(service=True, features=["chat"], key_limits=Limits(hour_usd=limit))
    key_id = hash_key(secret)[:12]
    client = openai_client(secret, max_retries=0)
    admitted = 0

    with pytest.raises(openai.RateLimitError) as refused:
        for n in range(200):
            client.chat.completions.create(
                model="gpt-4o", messages=PROMPT, max_tokens=200, user=f"invented-{uuid.uuid4().hex[:6]}-{n}"
            )
            admitted += 1

    assert admitted >= 1
    error = refused.value
    assert error.code == "insufficient_quota" and error.response.headers["x-should-retry"] == "false"
    assert error.response.headers["x-costbrake-limit-scope"] == f"key {key_id}"
    assert error.response.headers["x-costbrake-limit-window"] == "hour"
    records = [r for r in stack.stores.calls.scan_calls() if r.key_id == key_id]
    assert len({r.user_id for r in records}) == admitted  # every call named a fresh user
    assert sum(r.cost_usd for r in records) <= limit
    ref = CounterRef(f"key#{key_id}", span(Window.HOUR, stack.clock.now()).key)
    # The key's counter is shared: the aggregator settles it from the call records' stream.
    state = eventually(
        lambda: stack.stores.spend.get_counters([ref])[ref],
        until=lambda state: state.calls == len(records),
        what="the key's counter settled from the stream",
    )
    assert state.committed == state.spent == sum(r.cost_usd for r in records)  # nothing stays reserved
