"""`costbrake features`: caps and cost reducers per feature, set by operators and audited; read by the gateway."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from click.testing import CliRunner
from costbrake.cli import main
from costbrake.feature_settings import FeatureChanges, set_feature_settings
from costbrake.operations.features import UnknownFeature, configure_features, switch_feature
from costbrake.records import DEFAULT_SEMANTIC_THRESHOLD, AuditEntry, CacheMode, OverCap, SwitchState


@pytest.fixture
def run(stores, monkeypatch):
    """Runs `costbrake` against the unit tables (moto in-process)."""
    monkeypatch.setenv("COSTBRAKE_LEDGER_TABLE", "unit-LedgerTable")
    monkeypatch.setenv("COSTBRAKE_CALLS_TABLE", "unit-CallsTable")
    monkeypatch.delenv("COSTBRAKE_STACK", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args), terminal_width=200)
        assert (result.exit_code == 0) is ok, result.output
        return result

    return invoke


def test_given_a_stored_feature_without_reducer_settings_when_loaded_then_they_read_as_off(stores, clock, settings):
    configure_features(stores.admin, clock, settings, ["chat"], "test")

    feature = stores.admin.load_settings().features["chat"]

    assert (feature.cache, feature.truncate, feature.semantic_threshold) == (
        CacheMode.OFF,
        False,
        DEFAULT_SEMANTIC_THRESHOLD,
    )
    assert not feature.exact_cache and not feature.semantic_cache


def test_given_operator_sets_reducers_when_loaded_then_the_gateway_snapshot_carries_them(run, stores):
    run("features", "set", "faq", "--create", "--cache", "semantic", "--cache-ttl", "7200")
    run(
        "features", "set", "faq", "--semantic-threshold", "0.93", "--truncate", "on", "--max-input-tokens", "8000",
        "--max-output-tokens", "500", "--over-cap", "refuse", "--reason", "FAQ traffic", "--actor", "lead",
    )  # fmt: skip

    feature = stores.admin.load_settings().features["faq"]

    assert feature.cache is CacheMode.SEMANTIC and feature.exact_cache and feature.semantic_cache
    assert feature.cache_ttl_seconds == 7200
    assert feature.semantic_threshold == Decimal("0.93")
    assert feature.truncate is True
    assert (feature.max_input_tokens, feature.max_output_tokens, feature.over_cap) == (8000, 500, OverCap.REFUSE)


def test_given_settings_changes_when_shown_then_each_is_audited_with_who_why_and_what_changed(run, stores):
    run("features", "set", " FAQ ", "--create", "--cache", "exact", "--actor", "alice")
    change = ("--cache", "off", "--truncate", "on", "--reason", "hit rate 3%", "--actor", "bob")
    result = run("features", "set", "faq", *change)

    shown = json.loads(run("features", "show", "faq", "--json").stdout)

    assert "cache exact -> off" in result.stdout and "truncate False -> True" in result.stdout
    assert shown["name"] == "faq" and shown["cache"] == "off" and shown["truncate"] is True
    created, changed = shown["history"]
    assert (created["actor"], created["action"], created["from"]) == ("alice", "settings", "")
    assert "cache=exact" in created["to"]
    assert changed == {
        "at": changed["at"],
        "actor": "bob",
        "action": "settings",
        "from": "cache=exact, truncate=off, cache_generation=0",  # a cache change retires the stored answers
        "to": "cache=off, truncate=on, cache_generation=1",
        "reason": "hit rate 3%",
    }


def test_given_switch_flips_and_settings_changes_when_histories_read_then_switch_history_has_only_flips(
    run, stores, clock, settings
):
    run("features", "set", "chat", "--create", "--cache", "exact")
    switch_feature(stores.admin, clock, settings, "chat", SwitchState.OFF, "incident", "oncall")

    assert [row["to"] for row in stores.admin.switch_history("chat")] == ["off"]
    assert sorted(entry.action for entry in stores.admin.feature_history("chat")) == ["settings", "switch"]


def test_given_a_switched_off_feature_when_its_settings_change_then_the_switch_and_budget_stay(stores, clock, settings):
    configure_features(stores.admin, clock, settings, ["chat"], "test")
    stale_feature = stores.admin.load_settings().features["chat"]
    switch_feature(stores.admin, clock, settings, "chat", SwitchState.OFF, "incident", "oncall")

    # Written from a copy read before the flip: only the settings' attributes are updated.
    audit_before = len(stores.admin.feature_history("chat"))

    changed = replace(stale_feature, cache=CacheMode.EXACT)
    assert stores.admin.update_feature_settings(
        changed, AuditEntry(clock.now(), "t", "settings", "", "x"), create=False
    )

    feature = stores.admin.load_settings().features["chat"]
    assert feature.state is SwitchState.OFF and feature.reason == "incident"
    assert feature.cache is CacheMode.EXACT
    assert len(stores.admin.feature_history("chat")) == audit_before + 1


def test_given_an_unconfigured_feature_when_set_without_create_then_it_is_refused(run, stores, clock, settings):
    result = run("features", "set", "nope", "--cache", "exact", ok=False)

    assert "--create" in result.output
    with pytest.raises(UnknownFeature):
        set_feature_settings(stores.admin, clock, settings, "nope", FeatureChanges(truncate=True), "t")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cache-ttl", "5"], "--cache-ttl"),
        (["--semantic-threshold", "1.5"], "--semantic-threshold"),
        (["--semantic-threshold", "0"], "--semantic-threshold"),
        (["--semantic-threshold", "abc"], "not a number"),
        (["--max-input-tokens", "0"], "--max-input-tokens"),
        (["--cache", "fuzzy"], "fuzzy"),
        ([], "at least one setting"),
    ],
)
def test_given_an_invalid_setting_when_set_then_it_is_refused_and_nothing_changes(run, stores, args, message):
    run("features", "set", "chat", "--create", "--cache", "exact")

    result = run("features", "set", "chat", *args, ok=False)

    assert message in result.output
    assert stores.admin.load_settings().features["chat"].cache is CacheMode.EXACT
    assert len(stores.admin.feature_history("chat")) == 1


def test_given_an_invalid_name_when_created_then_it_is_refused(run):
    result = run("features", "set", "no spaces!", "--create", "--truncate", "on", ok=False)

    assert "not a feature name" in result.output


def test_given_the_same_values_when_set_again_then_nothing_is_written(run, stores):
    run("features", "set", "chat", "--create", "--cache", "exact")

    result = run("features", "set", "chat", "--cache", "exact")

    assert "unchanged" in result.stdout
    assert len(stores.admin.feature_history("chat")) == 1


def test_given_a_low_semantic_threshold_when_set_then_the_operator_is_warned(run):
    result = run("features", "set", "faq", "--create", "--cache", "semantic", "--semantic-threshold", "0.8")

    assert "WARNING" in result.stderr and "charged to the feature" in result.stderr


def test_given_features_when_listed_then_table_and_json_show_their_reducers(run):
    run("features", "set", "faq", "--create", "--cache", "semantic", "--cache-ttl", "600")
    run("features", "set", "code", "--create", "--truncate", "on")

    table = run("features", "list").stdout
    listed = json.loads(run("features", "list", "--json").stdout)

    assert "faq" in table and "semantic" in table and "600s" in table
    by_name = {row["name"]: row for row in listed}
    assert by_name["faq"]["cache"] == "semantic" and by_name["faq"]["cache_ttl_seconds"] == 600
    assert by_name["faq"]["semantic_threshold"] == "0.95"
    assert by_name["code"]["truncate"] is True and by_name["code"]["cache"] == "off"


def test_given_an_unknown_feature_when_shown_then_it_is_refused(run):
    assert "unknown feature" in run("features", "show", "ghost", ok=False).output
