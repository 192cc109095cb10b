"""The gateway's EMF metrics: names, values and dimension sets as docs/metrics.md and the dashboard expect."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from costbrake.errors import BudgetExceeded, UserBlocked
from costbrake.gateway import telemetry
from costbrake.gateway.asgi import build_app
from costbrake.gateway.service import Gateway
from costbrake.local.app_client import AppClient
from costbrake.operations.features import switch_feature
from costbrake.records import SwitchState

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
SECRET = "cb-telemetry-test-key"


def emf_documents(out: str) -> list[dict[str, Any]]:
    """The EMF documents among the lines printed (the Logger prints its JSON lines to stdout too)."""
    documents = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [document for document in documents if "_aws" in document]


def dimension_sets(document: dict[str, Any]) -> list[set[str]]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return [set(names) for names in directive["Dimensions"]]


def test_given_settled_call_when_recorded_then_emf_carries_cost_and_tokens_by_feature_and_model(capsys, call_record):
    record = call_record(
        cost_usd=Decimal("0.0125"), input_tokens=1000, output_tokens=1000, cache_read_tokens=200, truncated=True
    )

    telemetry.call_settled(record)

    (blob,) = emf_documents(capsys.readouterr().out)
    assert (blob["feature"], blob["model"], blob["service"]) == ("chat", "gpt-4o", "gateway")
    assert blob["Calls"] == [1.0] and blob["CostUsd"] == [0.0125]
    assert blob["InputTokens"] == [1200.0] and blob["OutputTokens"] == [1000.0] and blob["Truncations"] == [1.0]
    assert "ProviderErrors" not in blob
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == telemetry.NAMESPACE == "Costbrake"
    assert {metric["Name"] for metric in directive["Metrics"]} == {
        "Calls",
        "CostUsd",
        "InputTokens",
        "OutputTokens",
        "Truncations",
    }


def test_given_cache_hit_and_truncated_history_when_recorded_then_hits_savings_and_truncations_are_counted(
    capsys, call_record
):
    telemetry.call_settled(
        call_record(cost_usd=Decimal(0), cache_hit=True, saved_usd=Decimal("0.02"), cache_status="hit")
    )
    telemetry.call_settled(call_record(cache_status="miss", truncated_messages=4))

    hit, miss = emf_documents(capsys.readouterr().out)
    assert hit["CacheHits"] == [1.0] and hit["SavedUsd"] == [0.02] and "CacheMisses" not in hit
    assert miss["CacheMisses"] == [1.0] and miss["HistoryTruncations"] == [1.0] and "CacheHits" not in miss


def test_given_failed_call_when_recorded_then_provider_error_counted_and_dimension_sets_are_the_declared_ones(
    capsys, call_record
):
    telemetry.call_settled(call_record(status="error", cost_usd=Decimal(0), input_tokens=0, output_tokens=0))

    (blob,) = emf_documents(capsys.readouterr().out)
    assert blob["ProviderErrors"] == [1.0] and blob["CostUsd"] == [0.0]
    assert dimension_sets(blob) == [set(names) for names in telemetry.CALL_DIMENSION_SETS]
    assert dimension_sets(blob) == [{"feature", "model", "service"}, {"feature", "service"}, {"service"}]


def test_given_empty_feature_when_recorded_then_labelled_unknown_rather_than_dropped(capsys, call_record):
    telemetry.call_settled(call_record(feature=""))

    (blob,) = emf_documents(capsys.readouterr().out)
    assert blob["feature"] == "unknown"
    assert dimension_sets(blob)[0] == {"feature", "model", "service"}


def test_given_budget_refusal_with_feature_and_model_when_recorded_then_counted_by_all_three(capsys):
    error = BudgetExceeded("spent", retry_after=60, scope="user u", window="hour")

    telemetry.rejected(error, feature="deep-analysis", model="claude-opus-4-1")

    (blob,) = emf_documents(capsys.readouterr().out)
    assert (blob["feature"], blob["model"], blob["reason"]) == (
        "deep-analysis",
        "claude-opus-4-1",
        "insufficient_quota",
    )
    assert blob["Rejections"] == [1.0]
    assert dimension_sets(blob) == [set(names) for names in telemetry.REJECTION_DIMENSION_SETS]
    assert dimension_sets(blob) == [{"feature", "model", "reason", "service"}, {"reason", "service"}]


def test_given_refusal_without_feature_or_model_when_recorded_then_both_are_unknown(capsys):
    telemetry.rejected(UserBlocked("blocked"))

    (blob,) = emf_documents(capsys.readouterr().out)
    assert (blob["feature"], blob["model"], blob["reason"]) == ("unknown", "unknown", "user_blocked")


def test_given_emitted_metrics_when_listed_then_every_metric_and_unit_is_declared_once():
    emitted = telemetry.emitted_metrics()

    assert set(emitted) == {
        "Calls",
        "CostUsd",
        "InputTokens",
        "OutputTokens",
        "ProviderErrors",
        "Truncations",
        "SettledAboveReserved",
        "CacheHits",
        "CacheMisses",
        "SavedUsd",
        "HistoryTruncations",
        "Rejections",
    }
    assert all(all("service" in dimension_set for dimension_set in sets) for sets in emitted.values())


# ---- through the gateway's resolver: what a refused request is counted under ---------------------------------


@pytest.fixture
def gateway(make_gateway, settings) -> Gateway:
    return make_gateway(
        settings, secret=SECRET, user_id="tele-user", tier="free", feature=None, features=("summaries", "reports")
    )


def refused(
    gateway: Gateway, capsys, *, secret: str = SECRET, feature: str | None = None, body: dict[str, Any]
) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    if feature is not None:
        headers["X-Costbrake-Feature"] = feature
    with AppClient(build_app(gateway)) as client:
        capsys.readouterr()
        response = client.request("POST", "/v1/chat/completions", headers, json.dumps(body).encode())

    assert response.status_code >= 400, response.text
    (blob,) = [doc for doc in emf_documents(capsys.readouterr().out) if "Rejections" in doc]
    return blob


def ask(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


def test_given_switched_off_feature_when_refused_then_counted_under_feature_header_and_base_model(
    gateway, stores, clock, settings, capsys
):
    switch_feature(stores.admin, clock, settings, "reports", SwitchState.OFF, "too expensive", "test", create=True)

    blob = refused(gateway, capsys, feature="reports", body=ask("gpt-4o-2024-08-06"))

    assert (blob["feature"], blob["model"], blob["reason"]) == ("reports", "gpt-4o", "feature_disabled")


def test_given_no_feature_header_when_refused_then_counted_under_the_keys_default_feature(gateway, capsys):
    blob = refused(gateway, capsys, body=ask("invented-model-42"))

    assert (blob["feature"], blob["model"], blob["reason"]) == ("summaries", "unknown", "model_not_found")


def test_given_unknown_key_when_refused_then_nothing_the_caller_sent_becomes_a_dimension(gateway, capsys):
    blob = refused(gateway, capsys, secret="cb-not-a-key", feature="attacker-chosen", body=ask("gpt-4o"))

    assert (blob["feature"], blob["model"], blob["reason"]) == ("unknown", "unknown", "invalid_api_key")
