"""Operators' actions on users and switches: recorded (who/why/when) and announced as alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from costbrake.dal.spend import ReservationInfo
from costbrake.names import InvalidName
from costbrake.operations.announce import announce
from costbrake.operations.features import (
    UnknownFeature,
    configure_features,
    set_feature_budget,
    switch_feature,
    unconfigured_features,
)
from costbrake.operations.keys import UnknownKey, create_key, set_key_limits
from costbrake.operations.users import (
    UnknownTier,
    UnknownUser,
    block_user,
    find_user,
    set_user_limits,
    set_user_tier,
    unblock_user,
)
from costbrake.pipeline.actions import ActionPolicy, Controls, SwitchFlip, decide
from costbrake.pipeline.alerts import ALERT_JSON_SCHEMA
from costbrake.pipeline.anomaly import Anomaly, AnomalyType, Severity
from costbrake.records import AuditEntry, Charge, CounterRef, Limits, SwitchState, Tier, UserProfile
from costbrake.windows import Window, span
from jsonschema import validate

NOW_OF_TESTS = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


class RecordingSns:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.published.append(kwargs)
        return {"MessageId": "m1"}


@pytest.fixture
def alice(stores) -> UserProfile:
    profile = UserProfile("alice", "free", overrides=Limits(day_usd=Decimal(3)))
    stores.admin.put_user(profile)
    return profile


def test_given_known_user_when_blocked_then_profile_says_until_and_why_with_who_and_alert_announces_it(
    stores, clock, alice
):
    until = clock.now() + timedelta(hours=2)

    profile, alert = block_user(stores.admin, clock, "alice", until, "runaway loop", "oncall")

    assert stores.admin.get_user("alice") == profile
    assert profile.blocked_until == until and profile.blocked_reason == "runaway loop (oncall)"
    assert profile.overrides == alice.overrides  # the rest of the profile stays
    assert (alert.type, alert.scope, alert.generated_at) == ("user_block", "user#alice", clock.now())
    assert alert.details["actor"] == "oncall" and alert.details["reason"] == "runaway loop"
    assert alert.details["blocked_until"] == until.isoformat() and alert.details["at"] == clock.now().isoformat()
    validate(alert.to_message(), ALERT_JSON_SCHEMA)


def test_given_end_in_the_past_when_blocked_then_refused_and_nothing_changes(stores, clock, alice):
    with pytest.raises(ValueError, match="future"):
        block_user(stores.admin, clock, "alice", clock.now() - timedelta(minutes=1), "late", "oncall")

    assert stores.admin.get_user("alice") == alice


def test_given_unknown_user_when_blocked_then_unknown_user(stores, clock):
    with pytest.raises(UnknownUser, match="'nobody'"):
        block_user(stores.admin, clock, "nobody", clock.now() + timedelta(hours=1), "typo", "oncall")

    assert stores.admin.get_user("nobody") is None


def test_given_the_pipeline_blocks_a_user_unknown_to_the_ledger_then_blocked_on_the_default_tier(stores, clock):
    until = clock.now() + timedelta(hours=1)

    profile, _ = block_user(stores.admin, clock, "Spiker", until, "user spike", "costbrake-anomaly", create=True)

    assert stores.admin.get_user("spiker") == profile
    assert (profile.tier, profile.blocked_until) == ("default", until)
    assert profile.blocked_reason == "user spike (costbrake-anomaly)"


def test_given_a_key_created_for_a_new_user_without_a_tier_then_the_user_is_on_the_default_tier(stores, clock):
    create_key(stores.admin, clock, user_id="newcomer", tier=None, service=False)

    assert stores.admin.get_user("newcomer") == UserProfile("newcomer", "default")


def test_given_user_without_profile_who_spent_this_month_when_found_then_default_tier_profile(stores, clock):
    month = span(Window.MONTH, clock.now())
    charge = Charge(CounterRef("user#svc-user", month.key), Decimal(10), Decimal("0.2"), month.expires_at)
    stores.spend.reserve(ReservationInfo("r1", "svc-user", "chat", "gpt-4o", clock.now(), 0), [charge], None, 0)

    assert find_user(stores.admin, "svc-user", clock.now()) == UserProfile("svc-user", "default")


def test_given_blocked_user_when_unblocked_then_cleared_and_announced_else_nothing(stores, clock, alice):
    block_user(stores.admin, clock, "alice", clock.now() + timedelta(hours=1), "spike", "oncall")

    profile, alert = unblock_user(stores.admin, clock, "alice", "false alarm", "lead")
    again, no_alert = unblock_user(stores.admin, clock, "alice", "twice", "lead")

    assert profile.blocked_until is None and profile.blocked_reason == "" and stores.admin.get_user("alice") == profile
    assert alert is not None and alert.severity.value == "info" and alert.details["actor"] == "lead"
    assert alert.details["previous_blocked_until"] == (clock.now() + timedelta(hours=1)).isoformat()
    assert again == profile and no_alert is None


def test_given_tiers_when_set_tier_then_known_tiers_only_and_known_users_unless_created(stores, clock, alice):
    stores.admin.put_tier(Tier("pro", Limits(Decimal(5))), "test", clock.now())

    moved = set_user_tier(stores.admin, clock, "alice", "pro", "lead")
    with pytest.raises(UnknownTier, match="'gold'; tiers: pro"):
        set_user_tier(stores.admin, clock, "alice", "gold", "lead")
    with pytest.raises(UnknownUser):
        set_user_tier(stores.admin, clock, "newcomer", "pro", "lead")
    created = set_user_tier(stores.admin, clock, "newcomer", "pro", "lead", create=True)

    assert moved == UserProfile("alice", "pro", overrides=alice.overrides) == stores.admin.get_user("alice")
    assert created == UserProfile("newcomer", "pro") == stores.admin.get_user("newcomer")
    assert stores.admin.user_history("alice") == [AuditEntry(clock.now(), "lead", "tier", alice.tier, "pro")]


def test_given_operator_switch_off_when_flipped_then_audited_and_a_critical_alert_says_from_what(
    stores, clock, settings
):
    with pytest.raises(UnknownFeature, match="--create"):
        switch_feature(stores.admin, clock, settings, "search", SwitchState.OFF, "typo?", "oncall")
    with pytest.raises(ValueError, match="empty"):
        switch_feature(stores.admin, clock, settings, " ", SwitchState.OFF, "typo?", "oncall", create=True)
    feature, alert = switch_feature(
        stores.admin, clock, settings, "search", SwitchState.OFF, "cost incident", "oncall", create=True
    )

    assert (
        feature.state is SwitchState.OFF and stores.admin.load_settings().features["search"].reason == "cost incident"
    )
    assert stores.admin.switch_history("search") == [
        {"at": clock.now().isoformat(), "actor": "oncall", "from": "on", "to": "off", "reason": "cost incident"}
    ]
    assert (alert.type, alert.severity.value, alert.scope, alert.feature) == (
        "switch_flip",
        "critical",
        "feature#search",
        "search",
    )
    assert alert.details["previous_state"] == "on" and alert.details["state"] == "off"


def test_given_alert_topic_when_announced_then_published_there_and_kept_in_the_alert_log(stores, clock, settings):
    _, alert = switch_feature(
        stores.admin, clock, settings, "chat", SwitchState.DOWNGRADE, "95%", "oncall", create=True
    )
    sns = RecordingSns()
    topic = "arn:aws:sns:us-east-1:123456789012:alerts"

    where = announce(settings.model_copy(update={"alert_topic_arn": topic}), stores.alerts, alert, sns)

    assert [p["TopicArn"] for p in sns.published] == [topic] and topic in where
    assert json.loads(sns.published[0]["Message"]) == alert.to_message()
    assert sns.published[0]["MessageAttributes"]["type"]["StringValue"] == "switch_flip"
    logged = stores.alerts.alerts_between(clock.now() - timedelta(minutes=1), clock.now() + timedelta(minutes=1))
    assert [a["alert_id"] for a in logged] == [alert.alert_id]


def test_given_no_alert_topic_when_announced_then_only_logged_and_the_operator_is_told(stores, clock, settings):
    _, alert = switch_feature(stores.admin, clock, settings, "chat", SwitchState.ON, "recovered", "oncall", create=True)
    sns = RecordingSns()

    where = announce(settings.model_copy(update={"alert_topic_arn": None}), stores.alerts, alert, sns)

    assert sns.published == [] and "no alert topic configured" in where
    logged = stores.alerts.alerts_between(clock.now() - timedelta(minutes=1), clock.now() + timedelta(minutes=1))
    assert [a["summary"] for a in logged] == ["feature chat switched on -> on by oncall: recovered"]


def test_given_block_then_unblock_when_history_read_then_who_why_and_when_of_each_in_order(stores, clock, alice):
    until = clock.now() + timedelta(hours=1)
    block_user(stores.admin, clock, "alice", until, "runaway loop", "oncall")
    clock.advance(600)
    unblock_user(stores.admin, clock, "alice", "loop fixed", "lead")

    assert stores.admin.user_history("alice") == [
        AuditEntry(clock.now() - timedelta(seconds=600), "oncall", "block", "", until.isoformat(), "runaway loop"),
        AuditEntry(clock.now(), "lead", "unblock", until.isoformat(), "", "loop fixed"),
    ]


def test_given_a_user_on_a_tier_when_a_key_names_another_tier_then_refused_and_nothing_changes(stores, clock, alice):
    with pytest.raises(ValueError, match="users set-tier"):
        create_key(stores.admin, clock, user_id="alice", tier="enterprise", service=False, feature=None)

    assert stores.admin.get_user("alice") == alice and stores.admin.list_keys() == []


def test_given_user_limits_set_when_read_then_audited_and_a_new_user_is_on_the_default_tier(stores, clock):
    profile = set_user_limits(stores.admin, clock, "newbie", Limits(hour_usd=Decimal("0.5"), rpm=10), "lead")

    assert profile == UserProfile("newbie", "default", overrides=Limits(hour_usd=Decimal("0.5"), rpm=10))
    assert stores.admin.user_history("newbie") == [
        AuditEntry(clock.now(), "lead", "limits", "", "hour_usd=0.5, rpm=10")
    ]


# ---- keys: the features they may charge, their own budgets ------------------------------------------


def test_given_features_in_any_spelling_when_key_created_then_stored_canonical_first_is_default(stores, clock):
    new = create_key(
        stores.admin, clock, user_id=None, tier=None, service=True, features=[" Chat", "SUMMARIES", "chat"], name="svc"
    )

    [(stored, _)] = stores.admin.list_keys()
    assert stored == new.key
    assert (stored.features, stored.default_feature, stored.any_feature) == (("chat", "summaries"), "chat", False)


def test_given_the_single_feature_argument_when_key_created_then_it_is_the_only_feature(stores, clock):
    new = create_key(stores.admin, clock, user_id="bob", tier=None, service=False, feature="Reports")

    assert (new.key.features, new.key.default_feature) == (("reports",), "reports")


def test_given_any_feature_when_key_created_then_stored_as_an_explicit_opt_out(stores, clock):
    new = create_key(stores.admin, clock, user_id=None, tier=None, service=True, any_feature=True)

    [(stored, _)] = stores.admin.list_keys()
    assert stored.any_feature and stored.features == () and stored.default_feature is None == new.key.default_feature


@pytest.mark.parametrize("bad", ["deep analysis", "x" * 65, "chat\u200b", ""])
def test_given_a_feature_name_outside_the_rule_when_key_created_then_refused_and_no_key(stores, clock, bad):
    with pytest.raises(InvalidName):
        create_key(stores.admin, clock, user_id=None, tier=None, service=True, features=[bad])

    assert stores.admin.list_keys() == []


def test_given_user_id_in_another_spelling_when_user_key_created_then_bound_to_the_canonical_id(stores, clock):
    new = create_key(stores.admin, clock, user_id="  Carol ", tier="pro", service=False)

    assert new.key.user_id == "carol" and stores.admin.get_user("carol") == UserProfile("carol", "pro")
    with pytest.raises(InvalidName):
        create_key(stores.admin, clock, user_id="carol\u200b", tier=None, service=False)


def test_given_key_budgets_when_created_and_then_set_then_merged_and_each_change_audited(stores, clock):
    new = create_key(stores.admin, clock, user_id=None, tier=None, service=True, limits=Limits(month_usd=Decimal("20")))
    key_id = new.key.key_id

    clock.advance(60)
    updated = set_key_limits(stores.admin, clock, key_id, Limits(hour_usd=Decimal("0.5"), day_usd=Decimal("2")), "lead")

    assert updated.limits == Limits(Decimal("0.5"), Decimal("2"), Decimal("20"))
    found = stores.admin.find_key(key_id)
    assert found is not None and found[0] == updated
    assert stores.admin.key_history(key_id) == [
        AuditEntry(clock.now(), "lead", "limits", "month_usd=20", "hour_usd=0.5, day_usd=2, month_usd=20")
    ]


def test_given_unknown_key_or_a_rate_when_key_budget_set_then_refused(stores, clock):
    new = create_key(stores.admin, clock, user_id=None, tier=None, service=True)

    with pytest.raises(UnknownKey, match="'nope'"):
        set_key_limits(stores.admin, clock, "nope", Limits(hour_usd=Decimal(1)), "lead")
    with pytest.raises(ValueError, match="per user"):
        set_key_limits(stores.admin, clock, new.key.key_id, Limits(rpm=5), "lead")
    assert stores.admin.key_history(new.key.key_id) == []


def test_given_new_feature_names_when_configured_then_only_unconfigured_ones_reported_and_created(
    stores, clock, settings
):
    set_feature_budget(stores.admin, clock, settings, "chat", Decimal(10), "lead")

    missing = unconfigured_features(stores.admin, ["chat", "default", "reports"])
    configure_features(stores.admin, clock, settings, missing, "lead")

    assert missing == ["reports"]
    assert set(stores.admin.load_settings().features) == {"chat", "reports"}


# ---- feature names in operators' and automatic actions ----------------------------------------------


def test_given_feature_in_another_spelling_when_operator_switches_it_then_the_canonical_feature_flips(
    stores, clock, settings
):
    set_feature_budget(stores.admin, clock, settings, " Chat", Decimal(10), "lead")

    flipped, alert = switch_feature(stores.admin, clock, settings, "CHAT ", SwitchState.OFF, "incident", "oncall")

    assert flipped.name == "chat" and alert.scope == "feature#chat"
    assert set(stores.admin.load_settings().features) == {"chat"}
    assert stores.admin.load_settings().features["chat"].state is SwitchState.OFF
    with pytest.raises(ValueError, match="not a feature name"):
        switch_feature(stores.admin, clock, settings, "new feature", SwitchState.OFF, "x", "oncall", create=True)


def test_given_automatic_flip_of_a_spelling_when_carried_out_then_the_canonical_feature_is_switched(
    stores, clock, settings
):
    switch_feature(
        stores.admin, clock, settings, "Code-Generation", SwitchState.DOWNGRADE, "95%", "costbrake-anomaly", create=True
    )

    features = stores.admin.load_settings().features
    assert set(features) == {"code-generation"} and features["code-generation"].state is SwitchState.DOWNGRADE


def _threshold(scope: str, pct: int) -> Anomaly:
    return Anomaly(
        type=AnomalyType.BUDGET_THRESHOLD,
        severity=Severity.CRITICAL,
        scope=scope,
        window=span(Window.MONTH, NOW_OF_TESTS),
        current=Decimal(pct),
        limit=Decimal(100),
        utilization=Decimal(pct) / 100,
        summary=f"{scope} at {pct}%",
        threshold_pct=pct,
    )


def test_given_anomaly_on_a_non_canonical_feature_scope_when_decided_then_the_canonical_feature_is_flipped():
    controls = Controls(switches={"chat": SwitchState.ON})

    flips = decide(_threshold("feature#Chat ", 95), ActionPolicy(), controls, NOW_OF_TESTS)

    assert [(f.feature, f.state, f.previous) for f in flips if isinstance(f, SwitchFlip)] == [
        ("chat", SwitchState.DOWNGRADE, SwitchState.ON)
    ]


def test_given_anomaly_on_a_scope_with_no_canonical_name_when_decided_then_flipped_only_if_configured_as_is():
    legacy = Controls(switches={"Deep Analysis": SwitchState.ON})

    assert decide(_threshold("feature#" + "x" * 2048, 95), ActionPolicy(), legacy, NOW_OF_TESTS) == []
    [flip] = decide(_threshold("feature#Deep Analysis", 95), ActionPolicy(), legacy, NOW_OF_TESTS)
    assert isinstance(flip, SwitchFlip) and flip.feature == "Deep Analysis"


# ---- user ids in operators' actions ---------------------------------------------------------------------


def test_given_user_id_in_another_spelling_when_blocked_then_the_canonical_user_is(stores, clock, alice):
    until = clock.now() + timedelta(hours=1)

    profile, alert = block_user(stores.admin, clock, " ALICE ", until, "spike", "oncall")

    assert profile.user_id == "alice" and stores.admin.get_user("alice") == profile and alert.scope == "user#alice"
    assert find_user(stores.admin, "Alice", clock.now()) == profile
    with pytest.raises(InvalidName):
        block_user(stores.admin, clock, "alice\u200b", until, "spike", "oncall")


def test_given_profile_from_before_ids_were_canonical_when_named_then_that_spelling_is_found(stores, clock):
    stores.admin.put_user(UserProfile("Legacy", "pro"))

    assert find_user(stores.admin, "Legacy", clock.now()).user_id == "Legacy"
    profile, _ = block_user(stores.admin, clock, "Legacy", clock.now() + timedelta(hours=1), "spike", "oncall")
    assert stores.admin.get_user("Legacy") == profile and stores.admin.get_user("legacy") is None


def test_given_user_limits_in_another_spelling_when_set_then_on_the_canonical_user(stores, clock):
    profile = set_user_limits(stores.admin, clock, "NewBie ", Limits(day_usd=Decimal(1)), "lead")

    assert profile.user_id == "newbie" and stores.admin.get_user("newbie") == profile
