"""Operators' actions on users and switches: recorded (who/why/when) and announced as alerts."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from costbrake.dal.ledger import ReservationInfo
from costbrake.operations import (
    UnknownFeature,
    UnknownTier,
    UnknownUser,
    announce,
    block_user,
    create_key,
    find_user,
    set_user_limits,
    set_user_tier,
    switch_by_operator,
    unblock_user,
)
from costbrake.pipeline.alerts import ALERT_JSON_SCHEMA
from costbrake.records import AuditEntry, Charge, CounterRef, Limits, SwitchState, Tier, UserProfile
from costbrake.windows import Window, span
from jsonschema import validate


class RecordingSns:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.published.append(kwargs)
        return {"MessageId": "m1"}


@pytest.fixture
def alice(ledger) -> UserProfile:
    profile = UserProfile("alice", "free", overrides=Limits(day_usd=Decimal(3)))
    ledger.put_user(profile)
    return profile


def test_given_known_user_when_blocked_then_profile_says_until_and_why_with_who_and_alert_announces_it(
    ledger, clock, alice
):
    until = clock.now() + timedelta(hours=2)

    profile, alert = block_user(ledger, clock, "alice", until, "runaway loop", "oncall")

    assert ledger.get_user("alice") == profile
    assert profile.blocked_until == until and profile.blocked_reason == "runaway loop (oncall)"
    assert profile.overrides == alice.overrides  # the rest of the profile stays
    assert (alert.type, alert.scope, alert.generated_at) == ("user_block", "user#alice", clock.now())
    assert alert.details["actor"] == "oncall" and alert.details["reason"] == "runaway loop"
    assert alert.details["blocked_until"] == until.isoformat() and alert.details["at"] == clock.now().isoformat()
    validate(alert.to_message(), ALERT_JSON_SCHEMA)


def test_given_end_in_the_past_when_blocked_then_refused_and_nothing_changes(ledger, clock, alice):
    with pytest.raises(ValueError, match="future"):
        block_user(ledger, clock, "alice", clock.now() - timedelta(minutes=1), "late", "oncall")

    assert ledger.get_user("alice") == alice


def test_given_unknown_user_when_blocked_then_unknown_user(ledger, clock):
    with pytest.raises(UnknownUser, match="'nobody'"):
        block_user(ledger, clock, "nobody", clock.now() + timedelta(hours=1), "typo", "oncall")

    assert ledger.get_user("nobody") is None


def test_given_user_without_profile_who_spent_this_month_when_found_then_default_tier_profile(ledger, clock):
    month = span(Window.MONTH, clock.now())
    charge = Charge(CounterRef("user#svc-user", month.key), Decimal(10), Decimal("0.2"), month.expires_at)
    ledger.reserve(ReservationInfo("r1", "svc-user", "chat", "gpt-4o", clock.now(), 0), [charge], None, 0)

    assert find_user(ledger, "svc-user", clock.now()) == UserProfile("svc-user", "default")


def test_given_blocked_user_when_unblocked_then_cleared_and_announced_else_nothing(ledger, clock, alice):
    block_user(ledger, clock, "alice", clock.now() + timedelta(hours=1), "spike", "oncall")

    profile, alert = unblock_user(ledger, clock, "alice", "false alarm", "lead")
    again, no_alert = unblock_user(ledger, clock, "alice", "twice", "lead")

    assert profile.blocked_until is None and profile.blocked_reason == "" and ledger.get_user("alice") == profile
    assert alert is not None and alert.severity.value == "info" and alert.details["actor"] == "lead"
    assert alert.details["previous_blocked_until"] == (clock.now() + timedelta(hours=1)).isoformat()
    assert again == profile and no_alert is None


def test_given_tiers_when_set_tier_then_known_tiers_only_and_known_users_unless_created(ledger, clock, alice):
    ledger.put_tier(Tier("pro", Limits(Decimal(5))), "test", clock.now())

    moved = set_user_tier(ledger, clock, "alice", "pro", "lead")
    with pytest.raises(UnknownTier, match="'gold'; tiers: pro"):
        set_user_tier(ledger, clock, "alice", "gold", "lead")
    with pytest.raises(UnknownUser):
        set_user_tier(ledger, clock, "newcomer", "pro", "lead")
    created = set_user_tier(ledger, clock, "newcomer", "pro", "lead", create=True)

    assert moved == UserProfile("alice", "pro", overrides=alice.overrides) == ledger.get_user("alice")
    assert created == UserProfile("newcomer", "pro") == ledger.get_user("newcomer")
    assert ledger.user_history("alice") == [AuditEntry(clock.now(), "lead", "tier", alice.tier, "pro")]


def test_given_operator_switch_off_when_flipped_then_audited_and_a_critical_alert_says_from_what(
    ledger, clock, settings
):
    with pytest.raises(UnknownFeature, match="--create"):
        switch_by_operator(ledger, clock, settings, "search", SwitchState.OFF, "typo?", "oncall")
    with pytest.raises(ValueError, match="empty"):
        switch_by_operator(ledger, clock, settings, " ", SwitchState.OFF, "typo?", "oncall", create=True)
    feature, alert = switch_by_operator(
        ledger, clock, settings, "search", SwitchState.OFF, "cost incident", "oncall", create=True
    )

    assert feature.state is SwitchState.OFF and ledger.load_settings().features["search"].reason == "cost incident"
    assert ledger.switch_history("search") == [
        {"at": clock.now().isoformat(), "actor": "oncall", "from": "on", "to": "off", "reason": "cost incident"}
    ]
    assert (alert.type, alert.severity.value, alert.scope, alert.feature) == (
        "switch_flip",
        "critical",
        "feature#search",
        "search",
    )
    assert alert.details["previous_state"] == "on" and alert.details["state"] == "off"


def test_given_alert_topic_when_announced_then_published_there_and_kept_in_the_alert_log(ledger, clock, settings):
    _, alert = switch_by_operator(ledger, clock, settings, "chat", SwitchState.DOWNGRADE, "95%", "oncall", create=True)
    sns = RecordingSns()
    topic = "arn:aws:sns:us-east-1:123456789012:alerts"

    where = announce(settings.model_copy(update={"alert_topic_arn": topic}), ledger, alert, sns)

    assert [p["TopicArn"] for p in sns.published] == [topic] and topic in where
    assert json.loads(sns.published[0]["Message"]) == alert.to_message()
    assert sns.published[0]["MessageAttributes"]["type"]["StringValue"] == "switch_flip"
    logged = ledger.alerts_between(clock.now() - timedelta(minutes=1), clock.now() + timedelta(minutes=1))
    assert [a["alert_id"] for a in logged] == [alert.alert_id]


def test_given_no_alert_topic_when_announced_then_only_logged_and_the_operator_is_told(ledger, clock, settings):
    _, alert = switch_by_operator(ledger, clock, settings, "chat", SwitchState.ON, "recovered", "oncall", create=True)
    sns = RecordingSns()

    where = announce(settings.model_copy(update={"alert_topic_arn": None}), ledger, alert, sns)

    assert sns.published == [] and "no alert topic configured" in where
    logged = ledger.alerts_between(clock.now() - timedelta(minutes=1), clock.now() + timedelta(minutes=1))
    assert [a["summary"] for a in logged] == ["feature chat switched on -> on by oncall: recovered"]


def test_given_block_then_unblock_when_history_read_then_who_why_and_when_of_each_in_order(ledger, clock, alice):
    until = clock.now() + timedelta(hours=1)
    block_user(ledger, clock, "alice", until, "runaway loop", "oncall")
    clock.advance(600)
    unblock_user(ledger, clock, "alice", "loop fixed", "lead")

    assert ledger.user_history("alice") == [
        AuditEntry(clock.now() - timedelta(seconds=600), "oncall", "block", "", until.isoformat(), "runaway loop"),
        AuditEntry(clock.now(), "lead", "unblock", until.isoformat(), "", "loop fixed"),
    ]


def test_given_a_user_on_a_tier_when_a_key_names_another_tier_then_refused_and_nothing_changes(ledger, clock, alice):
    with pytest.raises(ValueError, match="users set-tier"):
        create_key(ledger, clock, user_id="alice", tier="enterprise", service=False, feature=None)

    assert ledger.get_user("alice") == alice and ledger.list_keys() == []


def test_given_user_limits_set_when_read_then_audited_and_a_new_user_is_on_the_default_tier(ledger, clock):
    profile = set_user_limits(ledger, clock, "newbie", Limits(hour_usd=Decimal("0.5"), rpm=10), "lead")

    assert profile == UserProfile("newbie", "default", overrides=Limits(hour_usd=Decimal("0.5"), rpm=10))
    assert ledger.user_history("newbie") == [AuditEntry(clock.now(), "lead", "limits", "", "hour_usd=0.5, rpm=10")]
