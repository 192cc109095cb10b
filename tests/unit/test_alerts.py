"""Alert messages follow the documented schema, carry filterable attributes and reach SNS subscribers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from costbrake.pipeline.alerts import (
    ALERT_JSON_SCHEMA,
    Alert,
    InMemoryDeduplicator,
    SnsPublisher,
    alert_for,
    dedup_expiry,
)
from costbrake.pipeline.anomaly import Anomaly, AnomalyType, Severity, Spender
from costbrake.windows import Window, span
from moto import mock_aws

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
ALERTS_DOC = Path(__file__).parents[2] / "docs" / "alerts.md"


def anomaly(
    scope: str = "feature#chat", severity: Severity = Severity.CRITICAL, when: datetime = NOW, **overrides: Any
) -> Anomaly:
    fields: dict[str, Any] = {
        "type": AnomalyType.ZSCORE,
        "severity": severity,
        "scope": scope,
        "window": span(Window.HOUR, when),
        "current": Decimal("412.1234567"),
        "limit": Decimal("40.5"),
        "utilization": Decimal("412.1234567") / Decimal("40.5"),
        "summary": "feature#chat cost $412.12 in h#2026-11-24T10: 9.1 sigma above its 336-hour mean of $12.10",
        "details": {"zscore": "9.10"},
        "top_users": (Spender("mallory", Decimal("300")), Spender("bob", Decimal("0.000001"))),
        "top_features": (Spender("chat", Decimal("412.1234567")),),
    }
    return Anomaly(**(fields | overrides))


def test_given_an_anomaly_when_serialised_then_message_matches_the_documented_schema_exactly():
    message = json.loads(alert_for(anomaly(), NOW).to_json())

    jsonschema.validate(message, ALERT_JSON_SCHEMA)
    assert set(message) == set(ALERT_JSON_SCHEMA["properties"])  # every field documented, every documented field set
    assert message["type"] == "zscore" and message["severity"] == "critical" and message["feature"] == "chat"
    assert (message["window"], message["window_start"], message["window_end"]) == (
        "h#2026-11-24T10",
        "2026-11-24T10:00:00+00:00",
        "2026-11-24T11:00:00+00:00",
    )
    assert message["generated_at"] == "2026-11-24T10:30:00+00:00"


def test_given_money_when_serialised_then_decimal_strings_never_floats():
    message = json.loads(alert_for(anomaly(), NOW).to_json())

    assert message["current_usd"] == "412.123457"  # six places, rounded half-even
    assert message["limit_usd"] == "40.5"
    assert message["top_users"] == [{"name": "mallory", "cost_usd": "300"}, {"name": "bob", "cost_usd": "0.000001"}]


def test_given_anomaly_without_a_limit_when_serialised_then_limit_and_utilization_are_null_and_still_valid():
    message = json.loads(alert_for(anomaly(limit=None, utilization=None), NOW).to_json())

    jsonschema.validate(message, ALERT_JSON_SCHEMA)
    assert (message["limit_usd"], message["utilization"]) == (None, None)


@pytest.mark.parametrize(
    ("scope", "feature"), [("feature#chat", "chat"), ("global", "global"), ("user#mallory", "global")]
)
def test_given_scopes_when_alerted_then_feature_attribute_names_the_feature_or_global(scope, feature):
    attributes = alert_for(anomaly(scope=scope, severity=Severity.WARNING), NOW).message_attributes

    assert attributes == {
        "type": {"DataType": "String", "StringValue": "zscore"},
        "severity": {"DataType": "String", "StringValue": "warning"},
        "feature": {"DataType": "String", "StringValue": feature},
    }


def test_given_long_non_ascii_scope_when_alerted_then_subject_fits_sns_limits():
    subject = alert_for(anomaly(scope="user#" + "é" * 200), NOW).subject

    assert len(subject) <= 100 and subject.isascii() and "\n" not in subject
    assert subject.startswith("costbrake critical: zscore user#")


def test_given_same_type_scope_window_when_alerted_twice_then_same_alert_id_and_another_window_differs():
    first = alert_for(anomaly(), NOW)
    again = alert_for(anomaly(current=Decimal(999)), NOW.replace(minute=59))
    next_hour = alert_for(anomaly(when=NOW.replace(hour=11)), NOW.replace(hour=11))

    assert first.alert_id == again.alert_id
    assert next_hour.alert_id != first.alert_id


def test_given_in_memory_deduplicator_when_claimed_then_only_first_claim_wins_until_forgotten():
    dedup = InMemoryDeduplicator()
    key = anomaly().dedup_key
    expires_at = dedup_expiry(anomaly().window)

    assert [dedup.first_time(key, expires_at), dedup.first_time(key, expires_at)] == [True, False]
    dedup.forget(key)
    assert dedup.first_time(key, expires_at) is True
    assert expires_at == int(datetime(2026, 11, 25, 11, tzinfo=UTC).timestamp())  # window end + 1 day


@pytest.fixture
def sns_and_sqs() -> Iterator[tuple[Any, Any, str]]:
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic_arn = sns.create_topic(Name="costbrake-alerts")["TopicArn"]
        yield sns, sqs, topic_arn


def subscribe_queue(sns: Any, sqs: Any, topic_arn: str, name: str, filter_policy: dict | None = None) -> str:
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
    return queue_url


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_given_sns_topic_with_queue_when_published_then_subscriber_reads_message_and_attributes(sns_and_sqs):
    sns, sqs, topic_arn = sns_and_sqs
    queue_url = subscribe_queue(sns, sqs, topic_arn, "all-alerts")
    alert = alert_for(anomaly(), NOW)

    SnsPublisher(sns, topic_arn).publish(alert)

    [envelope] = received(sqs, queue_url)
    assert json.loads(envelope["Message"]) == alert.to_message()
    assert envelope["Subject"] == alert.subject
    assert {name: value["Value"] for name, value in envelope["MessageAttributes"].items()} == {
        "type": "zscore",
        "severity": "critical",
        "feature": "chat",
    }


def test_given_filter_policies_from_the_docs_when_published_then_each_subscriber_gets_only_its_alerts(sns_and_sqs):
    sns, sqs, topic_arn = sns_and_sqs
    pager = subscribe_queue(sns, sqs, topic_arn, "pager", {"severity": ["critical"]})
    chat_team = subscribe_queue(sns, sqs, topic_arn, "chat-team", {"feature": ["chat", "global"]})
    budgets = subscribe_queue(sns, sqs, topic_arn, "finance", {"type": ["budget_threshold", "trend_runout"]})
    publisher = SnsPublisher(sns, topic_arn)
    alerts: list[Alert] = [
        alert_for(anomaly(scope="feature#chat", severity=Severity.CRITICAL), NOW),
        alert_for(anomaly(scope="feature#admin", severity=Severity.WARNING), NOW),
        alert_for(anomaly(scope="global", severity=Severity.WARNING, type=AnomalyType.BUDGET_THRESHOLD), NOW),
    ]

    for alert in alerts:
        publisher.publish(alert)

    def scopes(queue_url: str) -> set[str]:
        return {json.loads(envelope["Message"])["scope"] for envelope in received(sqs, queue_url)}

    assert scopes(pager) == {"feature#chat"}
    assert scopes(chat_team) == {"feature#chat", "global"}
    assert scopes(budgets) == {"global"}


def documented_json_blocks() -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", ALERTS_DOC.read_text(), re.DOTALL)]


def test_given_the_alerts_doc_when_read_then_its_schema_is_the_code_schema_and_its_example_is_valid():
    blocks = documented_json_blocks()
    schemas = [block for block in blocks if "$schema" in block]
    examples = [block for block in blocks if "schema_version" in block]

    assert schemas == [ALERT_JSON_SCHEMA]
    assert examples
    for example in examples:
        jsonschema.validate(example, ALERT_JSON_SCHEMA)


def test_given_the_documented_filter_policies_when_read_then_they_only_name_the_published_attributes():
    attributes = set(alert_for(anomaly(), NOW).message_attributes)
    policies = [block for block in documented_json_blocks() if "$schema" not in block and "schema_version" not in block]

    assert len(policies) >= 5
    assert all(set(policy) <= attributes for policy in policies)
