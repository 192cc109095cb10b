import json
from decimal import Decimal

from costbrake.errors import BudgetExceeded
from costbrake.gateway import telemetry


def test_given_settled_call_when_recorded_then_emf_carries_cost_and_tokens_by_feature_and_model(capsys, call_record):
    record = call_record(
        cost_usd=Decimal("0.0125"), input_tokens=1000, output_tokens=1000, cache_read_tokens=200, truncated=True
    )

    telemetry.call_settled(record)

    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (blob["feature"], blob["model"]) == ("chat", "gpt-4o")
    assert blob["CostUsd"] == [0.0125] and blob["InputTokens"] == [1200.0] and blob["Truncations"] == [1.0]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Costbrake"


def test_given_budget_refusal_when_recorded_then_rejection_counted_by_reason(capsys):
    telemetry.rejected(BudgetExceeded("spent", retry_after=60, scope="user u", window="hour"))

    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert blob["reason"] == "insufficient_quota" and blob["Rejections"] == [1.0]
