"""Rollups from call records (pure): parsing the stream image, the keys a call adds to, coalescing, grouping."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aws_lambda_powertools.shared.dynamodb_deserializer import TypeDeserializer
from costbrake.dal.calls import call_item
from costbrake.pipeline.rollups import (
    MalformedCallRecord,
    StreamCall,
    Totals,
    coalesce,
    distinct_calls,
    parse_call,
    plan_transactions,
    rollup_keys,
)

T = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def image_of(record) -> dict:
    """The NEW_IMAGE the gateway's call item produces, deserialized as Powertools hands it over."""
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in call_item(record).serialize().items()}


def call(request_id: str = "r1", user: str = "alice", at: datetime = T, **overrides) -> StreamCall:
    fields = {
        "request_id": request_id,
        "timestamp": at,
        "user_id": user,
        "feature": "chat",
        "model": "gpt-4o",
        "status": "ok",
        "cost_usd": Decimal("0.01"),
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_tokens": 0,
        "truncated": False,
    }
    return StreamCall(**(fields | overrides))


def test_given_gateway_call_item_when_parsed_then_view_carries_its_values(call_record):
    record = call_record(
        request_id="r9",
        cost_usd=Decimal("0.0123456"),
        cache_read_tokens=7,
        truncated=True,
        status="error",
        model="gpt-4o-mini",
        timestamp=datetime(2026, 11, 24, 12, 30, tzinfo=UTC),
    )

    parsed = parse_call(image_of(record))

    assert parsed == StreamCall(
        request_id="r9",
        timestamp=datetime(2026, 11, 24, 12, 30, tzinfo=UTC),
        user_id="alice",
        feature="chat",
        model="gpt-4o-mini",
        status="error",
        cost_usd=Decimal("0.0123456"),
        input_tokens=10,
        output_tokens=20,
        cache_read_tokens=7,
        truncated=True,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cost_usd", None),
        ("cost_usd", Decimal("-0.01")),
        ("cost_usd", "0.01"),
        ("input_tokens", Decimal("1.5")),
        ("output_tokens", Decimal("-1")),
        ("timestamp", "2026-11-24T10:30:00"),  # no time zone: which hour it belongs to is unknowable
        ("timestamp", "yesterday"),
        ("user_id", ""),
        ("truncated", None),
    ],
)
def test_given_malformed_image_when_parsed_then_refused(call_record, name, value):
    image = image_of(call_record())
    image[name] = value

    with pytest.raises(MalformedCallRecord):
        parse_call(image)


def test_given_call_when_keyed_then_global_feature_model_user_in_its_hour_and_day():
    keys = rollup_keys(call(user="bob", model="o3", feature="code", at=datetime(2026, 11, 24, 23, 59, tzinfo=UTC)))

    assert {(key.scope, key.window) for key in keys} == {
        (scope, window)
        for scope in ("global", "feature#code", "model#o3", "user#bob")
        for window in ("h#2026-11-24T23", "d#2026-11-24")
    }
    assert all(key.expires_at > int(datetime(2026, 11, 25, tzinfo=UTC).timestamp()) for key in keys)


def test_given_call_with_cache_read_truncation_and_error_when_totalled_then_each_is_counted_once():
    totals = Totals.of(call(cache_read_tokens=5, truncated=True, status="error", cost_usd=Decimal("0.5")))

    assert totals == Totals(
        cost_usd=Decimal("0.5"),
        calls=1,
        input_tokens=10,
        output_tokens=20,
        cache_read_tokens=5,
        cache_hits=1,
        truncations=1,
        errors=1,
    )


def test_given_calls_of_two_users_when_coalesced_then_one_delta_per_key_summing_its_calls():
    calls = [
        call("a1", "alice", cost_usd=Decimal("0.10")),
        call("a2", "alice", cost_usd=Decimal("0.20"), at=T + timedelta(hours=1)),
        call("b1", "bob", cost_usd=Decimal("0.05")),
    ]

    deltas = {(key.scope, key.window): totals for key, totals in coalesce(calls).items()}

    assert len(deltas) == 14  # global/feature/model: 2 hours + 1 day; each user: its hours + 1 day
    assert deltas[("global", "d#2026-11-24")].cost_usd == Decimal("0.35")
    assert deltas[("global", "d#2026-11-24")].calls == 3
    assert deltas[("global", "h#2026-11-24T10")].cost_usd == Decimal("0.15")
    assert deltas[("user#alice", "d#2026-11-24")].cost_usd == Decimal("0.30")
    assert deltas[("user#bob", "h#2026-11-24T10")].calls == 1
    assert ("user#bob", "h#2026-11-24T11") not in deltas


def test_given_same_request_twice_when_made_distinct_then_first_kept_in_order():
    first, other, again = call("r1", cost_usd=Decimal("1")), call("r2"), call("r1", cost_usd=Decimal("2"))

    assert distinct_calls([first, other, again]) == [first, other]


def test_given_many_users_when_planned_then_groups_fit_a_transaction_and_keep_every_call_once():
    calls = [call(f"r{n}", f"user{n % 37}", at=T + timedelta(minutes=n)) for n in range(300)]

    groups = plan_transactions(calls, max_items=100)

    for group in groups:
        keys = {key for member in group for key in rollup_keys(member)}
        assert len(group) + len(keys) <= 100
    assert Counter(member.request_id for group in groups for member in group) == Counter(c.request_id for c in calls)


def test_given_interleaved_users_when_planned_then_each_users_calls_stay_together():
    calls = [call(f"r{n}", f"user{n % 20}") for n in range(180)]  # one hour, 20 users interleaved

    groups = plan_transactions(calls, max_items=100)

    assert len(groups) >= 3
    # Arrival order would put every user in every group (and write each user's keys once per group).
    groups_per_user = Counter(user for group in groups for user in {member.user_id for member in group})
    assert max(groups_per_user.values()) <= 2
    assert sum(groups_per_user.values()) <= 20 + len(groups) - 1
