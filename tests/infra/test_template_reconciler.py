"""The reconciler function in template.yaml: daily schedule, a role narrowed to what it does, its own log group,
settings that validate, and a run under moto whose every DynamoDB request the role grants."""

from __future__ import annotations

import fnmatch
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.reconcile import deployment
from costbrake.reconcile.figures import ProviderCost, ProviderReport, ProviderUsage, Tokens
from costbrake.reconcile.settings import ReconcileSettings
from costbrake.wiring import stores_from_settings
from policy_grants import DynamoRequests, grants, statements
from template_refs import resolve

ENV_PREFIX = "COSTBRAKE_"
NOW = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)


@pytest.fixture
def reconciler(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["ReconcilerFunction"]["Properties"]
    return properties


def test_given_reconciler_when_read_then_it_runs_daily_on_the_reconcile_schedule(reconciler, template):
    [event] = reconciler["Events"].values()

    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "ReconcileSchedule"}
    assert template["Parameters"]["ReconcileSchedule"]["Default"] == "cron(30 6 * * ? *)"


def test_given_reconciler_policy_when_read_then_it_reads_writes_only_its_own_items_and_reads_the_admin_secret_only(
    reconciler, template
):
    granted = grants(reconciler, template)

    assert granted == {
        ("dynamodb:Query", "LedgerTable.Arn"),
        ("dynamodb:BatchGetItem", "LedgerTable.Arn"),
        ("dynamodb:PutItem", "LedgerTable.Arn"),
        ("dynamodb:DeleteItem", "LedgerTable.Arn"),
        ("dynamodb:Query", "CallsTable.Arn/index/calls-by-day"),
        ("sns:Publish", "AlertTopic"),
        ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:123456789012:secret:-??????"),
    }
    (writes,) = [s for s in statements(reconciler, admin_secret=True) if "dynamodb:PutItem" in s["Action"]]
    assert writes["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["recon#*", "alert#*", "alertlog#*"]}
    }
    # No admin-key secret named: no Secrets Manager permission at all.
    assert not {a for a, _ in grants(reconciler, template, admin_secret=False) if a.startswith("secretsmanager:")}
    secret = template["Resources"]["ReconcilerFunction"]["Properties"]["Policies"][0]["Statement"][-1]["Fn::If"][1]
    assert "${AdminKeySecretName}-??????" in secret["Resource"]["Fn::Sub"]


def test_given_reconciler_then_it_logs_to_its_own_log_group_with_the_stacks_retention(reconciler, template):
    group = template["Resources"][reconciler["LoggingConfig"]["LogGroup"]["Ref"]]

    assert reconciler["LoggingConfig"]["LogGroup"] == {"Ref": "ReconcilerLogGroup"}
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template["Resources"]["ReconcilerFunction"]["Metadata"] == {"BuildMethod": "makefile"}


def test_given_reconciler_env_with_the_defaults_then_every_variable_is_a_validated_setting_and_the_feature_is_off(
    reconciler, template, monkeypatch
):
    variables = reconciler["Environment"]["Variables"]
    globals_ = template["Globals"]["Function"]["Environment"]["Variables"]
    known = set(Settings.model_fields) | set(ReconcileSettings.model_fields)

    assert variables["COSTBRAKE_ADMIN_SECRET_ID"] == {"Ref": "AdminKeySecretName"}
    assert template["Parameters"]["AdminKeySecretName"]["Default"] == ""
    for name, value in {**globals_, **variables}.items():
        if name.startswith(ENV_PREFIX):
            assert name[len(ENV_PREFIX) :].lower() in known, name
            monkeypatch.setenv(name, str(resolve(value, template)))
    settings, reconcile = Settings(), ReconcileSettings()  # type: ignore[call-arg]

    assert settings.alert_topic_arn == "AlertTopic"
    assert reconcile.configured is False  # no secret named: off
    assert reconcile.reconcile_threshold_pct == Decimal(1) and reconcile.reconcile_floor_usd == Decimal(1)
    monkeypatch.setenv("COSTBRAKE_RECONCILE_THRESHOLD_PCT", "0")
    with pytest.raises(ValueError, match="reconcile_threshold_pct"):
        ReconcileSettings()


class _FakeAdmin:
    provider = "openai"

    def report(self, start: datetime, end: datetime) -> ProviderReport:
        day = date(2026, 11, 21)  # final at NOW (24 h after it ended)
        usage = ProviderUsage(day, "openai", "gpt-4.1", Tokens(input=3_000_000), api_key_id="key_x")
        return ProviderReport("openai", (usage,), (ProviderCost(day, "openai", Decimal(6), "gpt-4.1"),))


def test_given_reconciler_policy_when_a_run_alerts_and_keeps_status_then_every_dynamodb_request_is_granted(
    tables, reconciler, template, monkeypatch
):
    settings = Settings(
        ledger_table=tables["LedgerTable"], calls_table=tables["CallsTable"], dynamodb_endpoint_url=None
    )
    stores = stores_from_settings(settings)
    sns = boto3.client("sns", region_name="us-east-1")
    settings = settings.model_copy(update={"alert_topic_arn": sns.create_topic(Name="alerts")["TopicArn"]})
    monkeypatch.setattr(deployment, "admin_clients", lambda *_: [_FakeAdmin()])
    seen = DynamoRequests(tables).watch(stores.tables.client, boto3.client("dynamodb", region_name="us-east-1"))
    reconcile_settings = ReconcileSettings(openai_admin_key="sk-admin-x")  # type: ignore[arg-type]

    result = deployment.reconcile_deployment(stores, settings, reconcile_settings, ManualClock(NOW), publish=True)

    assert [a.type for a in result.alerts] == ["unguarded_spend", "reconciliation"]
    assert ("dynamodb:Query", "CallsTable.Arn/index/calls-by-day") in seen.requests
    assert ("dynamodb:PutItem", "LedgerTable.Arn") in seen.requests
    assert seen.requests <= grants(reconciler, template)
    patterns = ["recon#*", "alert#*", "alertlog#*"]
    assert seen.keys and all(any(fnmatch.fnmatch(pk, p) for p in patterns) for pk in seen.keys), seen.keys
