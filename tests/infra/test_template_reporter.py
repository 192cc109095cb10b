"""The reporter function in template.yaml: weekly schedule, least-privilege policy that is still sufficient."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.pipeline.reporter import publish_weekly_report
from costbrake.wiring import stores_from_settings
from policy_grants import DynamoRequests, grants

ENV_PREFIX = "COSTBRAKE_"
# Read-only DynamoDB operations; anything else (Put, Update, Delete, BatchWrite, TransactWrite, Scan...) is refused.
READ_ACTIONS = {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"}


@pytest.fixture
def reporter(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["ReporterFunction"]["Properties"]
    return properties


def test_given_reporter_when_read_then_it_runs_on_the_report_schedule_mondays_at_eight_utc(reporter, template):
    [event] = reporter["Events"].values()

    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "ReportSchedule"}
    assert template["Parameters"]["ReportSchedule"]["Default"] == "cron(0 8 ? * MON *)"


def test_given_reporter_policy_when_read_then_it_reads_the_tables_and_publishes_to_the_alert_topic_only(
    reporter, template
):
    granted = grants(reporter, template)

    assert granted == {
        ("dynamodb:Query", "LedgerTable.Arn"),
        ("dynamodb:BatchGetItem", "LedgerTable.Arn"),
        ("dynamodb:Query", "CallsTable.Arn/index/calls-by-day"),
        ("sns:Publish", "AlertTopic"),
    }
    dynamodb_actions = {action for action, _ in granted if action.startswith("dynamodb:")}
    assert dynamodb_actions <= READ_ACTIONS, "the reporter must not be able to write to a table"


def test_given_reporter_env_when_compared_with_settings_then_tables_and_topic_are_set_and_all_are_fields(reporter):
    variables = reporter["Environment"]["Variables"]

    assert variables["COSTBRAKE_LEDGER_TABLE"] == {"Ref": "LedgerTable"}
    assert variables["COSTBRAKE_CALLS_TABLE"] == {"Ref": "CallsTable"}
    assert variables["COSTBRAKE_ALERT_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    costbrake_variables = [name for name in variables if name.startswith(ENV_PREFIX)]
    assert all(name[len(ENV_PREFIX) :].lower() in Settings.model_fields for name in costbrake_variables)


def test_given_reporter_errors_alarm_when_read_then_it_watches_the_reporter_and_notifies_the_topic(template):
    alarm = template["Resources"]["ReporterErrorsAlarm"]["Properties"]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ReporterFunction"}}]
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_given_reporter_policy_when_the_report_runs_then_every_dynamodb_request_it_makes_is_granted(
    tables, reporter, template
):
    settings = Settings(
        ledger_table=tables["LedgerTable"], calls_table=tables["CallsTable"], dynamodb_endpoint_url=None
    )
    stores = stores_from_settings(settings)
    sns = boto3.client("sns", region_name="us-east-1")
    topic_arn = sns.create_topic(Name="costbrake-alerts")["TopicArn"]
    seen = DynamoRequests(tables).watch(stores.tables.client)

    publish_weekly_report(stores, settings, ManualClock(datetime(2026, 11, 24, 8, tzinfo=UTC)), sns, topic_arn)

    assert ("dynamodb:Query", "CallsTable.Arn/index/calls-by-day") in seen.requests  # the hook saw the period read
    assert seen.requests <= grants(reporter, template)
