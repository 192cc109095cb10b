"""Feature names and end-user ids: one canonical spelling or a refusal; which features a key may charge."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from costbrake.budgets import budget_lines, key_lines
from costbrake.config import Settings
from costbrake.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from costbrake.names import (
    USER_ID_MAX_BYTES,
    InvalidName,
    canonical_feature,
    canonical_user_id,
    header_safe,
    same_user_id,
)
from costbrake.policy import (
    caller_user_id,
    end_user,
    feature_of,
    key_features,
    requested_feature,
    resolve_feature,
)
from costbrake.records import ApiKey, Feature, GlobalBudget, Limits, SettingsSnapshot, SwitchState
from costbrake.scopes import Scope

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
CHAT_OFF = Feature("chat", state=SwitchState.OFF, reason="incident")
CONFIGURED = {"chat": CHAT_OFF, "summaries": Feature("summaries")}
SNAPSHOT = SettingsSnapshot(tiers={}, features=CONFIGURED, global_budget=None)
SETTINGS = Settings(ledger_table="unit-ledger", calls_table="unit-calls", dynamodb_endpoint_url=None)


def key(**fields: Any) -> ApiKey:
    values: dict[str, Any] = {"key_id": "k1", "user_id": None, "service": True} | fields
    return ApiKey(**values)


def header(value: str) -> dict[str, str]:
    return {"x-costbrake-feature": value}


# ---- feature names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["chat", "Chat", "CHAT", " chat", "chat ", "\tChAt\n", "\uff23\uff48\uff41\uff54", "chat\u3000"],
)
def test_given_a_spelling_of_chat_when_canonicalised_then_chat(raw):
    assert canonical_feature(raw) == "chat"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "deep analysis", "chat\u200b", "chat/2", "café", "x" * 65, "x" * 2048, "ch\x00at", "chat."],
)
def test_given_a_name_outside_the_rule_when_canonicalised_then_refused_naming_the_field(raw):
    with pytest.raises(InvalidName, match="is not a feature name") as refused:
        canonical_feature(raw, "--feature")

    assert refused.value.field == "--feature"
    assert len(refused.value.message) < 200  # a 2 KB name is not echoed back


def test_given_64_characters_when_canonicalised_then_kept():
    assert canonical_feature("a-" * 31 + "_9") == "a-" * 31 + "_9"


# ---- end-user ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["victim", "VICTIM", "victim ", " Victim\t", "\u00a0VicTim\u00a0"])
def test_given_a_spelling_of_victim_when_canonicalised_then_victim(raw):
    assert canonical_user_id(raw) == "victim"


def test_given_decomposed_and_composed_accents_when_canonicalised_then_one_id():
    assert canonical_user_id("Jose\u0301") == canonical_user_id("JOSÉ") == "jos\u00e9"


def test_given_sharp_s_when_canonicalised_then_case_folded_like_its_capital():
    assert canonical_user_id("Straße") == canonical_user_id("STRASSE") == "strasse"


@pytest.mark.parametrize(
    "raw",
    [
        "victim\u200b",  # zero-width space
        "\u200bvictim",
        "vic\u200dtim",  # zero-width joiner
        "victim\u202e",  # right-to-left override
        "vic\u200ftim",  # right-to-left mark
        "vic\x00tim",
        "vic\ntim",
        "vic\rtim",
        "vic\x7ftim",
        "vic\u2028tim",  # line separator
        "vic\u00a0tim",  # no-break space inside
        "vic\ud800tim",  # lone surrogate
        "\ufeffvictim",  # byte-order mark
    ],
)
def test_given_an_id_with_an_invisible_or_control_character_when_canonicalised_then_refused(raw):
    with pytest.raises(InvalidName, match="unprintable character U\\+") as refused:
        canonical_user_id(raw, "metadata.user_id")

    assert refused.value.field == "metadata.user_id"


def test_given_an_id_over_128_bytes_of_utf8_when_canonicalised_then_refused_though_under_128_characters():
    assert canonical_user_id("é" * 64) == "é" * 64  # 128 bytes
    with pytest.raises(InvalidName, match=f"at most {USER_ID_MAX_BYTES}"):
        canonical_user_id("é" * 65)  # 65 characters, 130 bytes


def test_given_a_blank_id_when_canonicalised_then_refused():
    with pytest.raises(InvalidName, match="must not be empty"):
        canonical_user_id("  ")


def test_given_a_stored_id_without_canonical_form_when_compared_then_kept_as_it_is():
    assert same_user_id("Alice") == "alice"
    assert same_user_id("legacy\u200bid") == "legacy\u200bid"


def test_given_non_ascii_id_when_made_header_safe_then_percent_encoded_and_ascii_kept():
    assert header_safe("alice@example.com, day") == "alice@example.com, day"
    assert header_safe("josé 100%") == "jos%C3%A9 100%25"


# ---- the end user a request names ---------------------------------------------------------------


def test_given_request_naming_user_in_another_spelling_when_read_then_canonical():
    assert end_user("  VICTIM ", "user") == "victim"
    assert end_user(None, "user") is None
    assert end_user("", "user") is None  # names none: the key's own bucket


def test_given_request_naming_an_unprintable_user_when_read_then_400_naming_the_field():
    with pytest.raises(InvalidRequest) as refused:
        end_user("victim\u200b", "metadata.user_id")

    assert refused.value.status == 400 and refused.value.param == "metadata.user_id"


def test_given_service_key_when_caller_resolved_then_named_user_or_the_keys_bucket():
    assert caller_user_id(key(), "victim") == "victim"
    assert caller_user_id(key(), None) == "key:k1"


def test_given_user_key_when_it_names_its_own_user_in_another_spelling_then_allowed_and_charged_as_stored():
    legacy = key(service=False, user_id="Alice")  # a key made before ids were canonical

    assert caller_user_id(legacy, "alice") == "Alice"
    with pytest.raises(PermissionDenied):
        caller_user_id(legacy, "bob")
    with pytest.raises(AuthenticationFailed):
        caller_user_id(key(service=False, user_id=None), None)


# ---- which feature a request charges ------------------------------------------------------------


def test_given_key_with_features_when_no_header_then_its_default_feature():
    listed = key(default_feature="summaries", features=("summaries", "chat"))

    assert requested_feature({}, listed) == "summaries"
    assert requested_feature(header("  "), listed) == "summaries"
    assert resolve_feature(SETTINGS, SNAPSHOT, {}, listed).name == "summaries"


def test_given_header_in_another_spelling_when_resolved_then_the_canonical_feature_with_its_switch():
    listed = key(default_feature="summaries", features=("summaries", "chat"))

    for spelling in ("CHAT", "chat ", " Chat", "\uff43\uff48\uff41\uff54"):
        feature = resolve_feature(SETTINGS, SNAPSHOT, header(spelling), listed)
        assert feature == CHAT_OFF  # the switched-off configuration, whatever the spelling


def test_given_header_naming_a_feature_not_on_the_key_when_resolved_then_403_naming_the_allowed_ones():
    listed = key(default_feature="summaries", features=("summaries",))

    with pytest.raises(PermissionDenied, match="may not charge feature 'chat'; it may charge 'summaries'"):
        resolve_feature(SETTINGS, SNAPSHOT, header("Chat"), listed)
    with pytest.raises(PermissionDenied, match="'made-up'"):
        resolve_feature(SETTINGS, SNAPSHOT, header("made-up"), listed)


def test_given_header_with_no_canonical_form_when_resolved_then_400():
    with pytest.raises(InvalidRequest, match="X-Costbrake-Feature") as refused:
        resolve_feature(SETTINGS, SNAPSHOT, header("x" * 2048), key(any_feature=True))

    assert refused.value.status == 400


def test_given_key_from_before_feature_lists_when_resolved_then_only_its_default_feature():
    legacy_with_default = key(default_feature="summaries")
    legacy_without = key()

    assert key_features(legacy_with_default) == ("summaries",)
    assert key_features(legacy_without) == ("default",)
    assert resolve_feature(SETTINGS, SNAPSHOT, {}, legacy_without).name == "default"
    with pytest.raises(PermissionDenied):
        resolve_feature(SETTINGS, SNAPSHOT, header("chat"), legacy_with_default)
    with pytest.raises(PermissionDenied):
        resolve_feature(SETTINGS, SNAPSHOT, header("summaries"), legacy_without)


def test_given_any_feature_key_when_it_names_a_configured_feature_or_default_then_allowed():
    anything = key(any_feature=True)

    assert resolve_feature(SETTINGS, SNAPSHOT, header("SUMMARIES"), anything).name == "summaries"
    assert resolve_feature(SETTINGS, SNAPSHOT, {}, anything).name == "default"


def test_given_any_feature_key_when_it_names_an_unconfigured_feature_then_403_unknown_feature():
    with pytest.raises(PermissionDenied, match=r"Unknown feature 'made-up'.*configured: chat, summaries"):
        resolve_feature(SETTINGS, SNAPSHOT, header("made-up"), key(any_feature=True))


def test_given_listed_feature_without_configuration_when_resolved_then_the_deployment_defaults_apply():
    listed = key(default_feature="reports", features=("reports",))

    feature = resolve_feature(SETTINGS, SNAPSHOT, {}, listed)

    assert (feature.name, feature.state, feature.month_usd) == ("reports", SwitchState.ON, None)


def test_given_refused_feature_when_labelled_then_empty_so_callers_cannot_mint_label_values():
    listed = key(default_feature="summaries", features=("summaries", "chat"))

    assert feature_of(header("CHAT"), listed) == "chat"
    assert feature_of(header("made-up"), listed) == ""
    assert feature_of(header("x" * 2048), listed) == ""
    assert feature_of(header("made-up"), key(any_feature=True), SNAPSHOT) == ""
    assert feature_of(header("Summaries"), key(any_feature=True), SNAPSHOT) == "summaries"


# ---- a key's own budgets ------------------------------------------------------------------------


def test_given_key_with_hour_day_month_budgets_when_lines_planned_then_one_line_per_window_on_the_key():
    budgeted = key(hour_usd=Decimal("1"), day_usd=Decimal("5"), month_usd=Decimal("20"))

    lines = budget_lines(
        user_id="anyone",
        user_limits=Limits(),
        feature=Feature("chat"),
        key=budgeted,
        global_budget=GlobalBudget(Decimal(1000), 1),
        now=NOW,
    )

    by_label = {line.label: (line.scope.counter_key, line.limit, line.span.key) for line in lines}
    assert by_label == {
        "key k1, hour": ("key#k1", Decimal("1"), "h#2026-11-24T10"),
        "key k1, day": ("key#k1", Decimal("5"), "d#2026-11-24"),
        "key k1, month": ("key#k1", Decimal("20"), "m#2026-11"),
        "global, month": ("global", Decimal(1000), "m#2026-11"),
    }


def test_given_key_without_budgets_when_lines_planned_then_none_for_the_key():
    assert key_lines(key(), NOW) == []
    assert [line.label for line in key_lines(key(day_usd=Decimal("2")), NOW)] == ["key k1, day"]


def test_given_non_ascii_user_when_lines_planned_then_label_is_header_safe_and_counter_is_the_id():
    line = budget_lines(
        user_id="josé",
        user_limits=Limits(hour_usd=Decimal(1)),
        feature=Feature("chat"),
        key=None,
        global_budget=GlobalBudget(Decimal(1000), 1),
        now=NOW,
    )[0]

    assert line.label == "user jos%C3%A9, hour"
    assert line.scope == Scope.user("josé") and line.scope.counter_key == "user#josé"
    assert line.label.isascii()


@pytest.mark.parametrize(
    "spelling", ["\uff56\uff49\uff43\uff54\uff49\uff4d", "\uff36\uff49\uff43\uff54\uff49\uff4d ", "VICTIM"]
)  # fullwidth "victim", fullwidth "Victim " and upper case
def test_given_a_compatibility_spelling_of_an_id_when_canonicalised_then_it_is_the_same_user(spelling):
    assert canonical_user_id(spelling) == "victim"


@pytest.mark.parametrize("invisible", ["\u034f", "\u115f", "\u3164", "\u2800", "\ufe0f", "\u00ad"])
def test_given_an_id_with_a_character_that_renders_as_nothing_when_canonicalised_then_refused(invisible):
    with pytest.raises(InvalidName):
        canonical_user_id(f"victim{invisible}")
