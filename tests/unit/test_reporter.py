"""The weekly cost report on the alert topic: its subject, attributes, text and size, read back through SQS."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from costbrake.formatting import usd
from costbrake.pipeline.alerts import SnsPublisher, alert_for
from costbrake.pipeline.anomaly import Anomaly, AnomalyType, Severity
from costbrake.pipeline.reporter import fit_message, publish_weekly_report, report_subject
from costbrake.windows import Window, span

ALERTS_DOC = Path(__file__).parents[2] / "docs" / "alerts.md"
REPORTS_ONLY = {"type": ["cost_report"]}
ALERTS_ONLY = {"type": [{"anything-but": ["cost_report"]}]}


@pytest.fixture
def topic(stores) -> tuple[Any, Any, str]:
    """SNS and SQS clients and the alert topic, in the ledger fixture's moto."""
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sns, sqs, sns.create_topic(Name="costbrake-alerts")["TopicArn"]


@pytest.fixture
def subscribe(topic) -> Callable[..., str]:
    sns, sqs, topic_arn = topic

    def make(name: str, filter_policy: dict[str, Any] | None = None) -> str:
        queue_url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
        return queue_url

    return make


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """The SNS envelopes delivered to the queue."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def attributes(envelope: dict[str, Any]) -> dict[str, str]:
    return {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}


def reported_cost(text: str) -> tuple[str, int]:
    """The headline "cost" line of the text report: the period's total and number of calls."""
    match = re.search(r"^  cost +(\S+) over ([\d,]+) calls", text, re.MULTILINE)
    assert match, text
    return match[1], int(match[2].replace(",", ""))


@pytest.fixture
def seeded_week(stores, clock, call_record) -> Decimal:
    """Three calls inside the last 7 days and one just before them; returns the cost of the three."""
    calls = [
        ("alice", "chat", "1.25", timedelta(days=1)),
        ("bob", "deep-analysis", "10.5", timedelta(days=3)),
        ("carol", "chat", "0.59", timedelta(days=6, hours=23)),
        ("dave", "chat", "100", timedelta(days=8)),  # before the period
    ]
    for n, (user, feature, cost, age) in enumerate(calls):
        record = call_record(
            request_id=f"week-{n}", user_id=user, feature=feature, cost_usd=Decimal(cost), timestamp=clock.now() - age
        )
        stores.spend.settle(record.request_id, [], record.cost_usd, record)
    return Decimal("12.34")


def test_given_a_week_of_calls_when_reported_then_subscriber_gets_the_text_with_their_total_and_report_attributes(
    stores, settings, clock, topic, subscribe, seeded_week
):
    sns, sqs, topic_arn = topic
    queue_url = subscribe("everything")

    published = publish_weekly_report(stores, settings, clock, sns, topic_arn)

    [envelope] = received(sqs, queue_url)
    assert envelope["Subject"] == "costbrake weekly cost report 2026-11-17..2026-11-24" == published.subject
    assert attributes(envelope) == {"type": "cost_report", "severity": "info", "feature": "global"}
    assert envelope["MessageId"] == published.message_id
    assert reported_cost(envelope["Message"]) == (usd(seeded_week), 3) == ("$12.34", 3)
    assert (published.cost_usd, published.calls, published.truncated) == (seeded_week, 3, False)
    assert "deep-analysis" in envelope["Message"] and "dave" not in envelope["Message"]


def test_given_no_calls_when_reported_then_a_zero_report_is_still_published(stores, settings, clock, topic, subscribe):
    sns, sqs, topic_arn = topic
    queue_url = subscribe("everything")

    publish_weekly_report(stores, settings, clock, sns, topic_arn)

    [envelope] = received(sqs, queue_url)
    assert reported_cost(envelope["Message"]) == ("$0.00", 0)


def test_given_documented_filter_policies_when_report_and_alert_published_then_each_queue_gets_its_kind(
    stores, settings, clock, topic, subscribe
):
    sns, sqs, topic_arn = topic
    reports = subscribe("reports", REPORTS_ONLY)
    alerts = subscribe("alerts", ALERTS_ONLY)
    pager = subscribe("pager", {"severity": ["critical"]})
    hour = span(Window.HOUR, clock.now())
    anomaly = Anomaly(
        AnomalyType.ZSCORE, Severity.CRITICAL, "global", hour, Decimal(90), Decimal(30), Decimal(3), "spike"
    )

    publish_weekly_report(stores, settings, clock, sns, topic_arn)
    SnsPublisher(sns, topic_arn).publish(alert_for(anomaly, clock.now()))

    assert [attributes(e)["type"] for e in received(sqs, reports)] == ["cost_report"]
    assert [attributes(e)["type"] for e in received(sqs, alerts)] == ["zscore"]
    assert [attributes(e)["type"] for e in received(sqs, pager)] == ["zscore"]


def test_given_the_alerts_doc_when_read_then_it_documents_the_two_policies_tested_here():
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", ALERTS_DOC.read_text(), re.DOTALL)]

    assert REPORTS_ONLY in blocks and ALERTS_ONLY in blocks


def test_given_a_period_of_other_length_when_titled_then_subject_says_so_and_stays_ascii(clock):
    end = clock.now()

    assert report_subject(end - timedelta(days=30), end, 30) == "costbrake 30-day cost report 2026-10-25..2026-11-24"


def test_given_text_within_the_limit_when_fitted_then_unchanged():
    text = "line one\nline two\n"

    assert fit_message(text, 7, max_bytes=len(text)) == (text, False)


def test_given_text_over_the_limit_when_fitted_then_whole_lines_and_a_note_within_the_limit():
    lines = [f"user-{n:04d}  {'é' * 30}  $1.00" for n in range(2000)]  # two-byte characters
    text = "\n".join(lines) + "\n"
    limit = 10_000

    fitted, truncated = fit_message(text, 7, max_bytes=limit)

    encoded = fitted.encode("utf-8")
    assert truncated and len(encoded) <= limit
    head, note = fitted.rsplit("\n[", 1)
    assert head.endswith("\n") and text.startswith(head)  # whole lines, nothing altered
    assert len(head.splitlines()) > 100
    shown = len(head.encode("utf-8"))
    assert note == (
        f"report truncated to fit an SNS message: the first {shown} of {len(text.encode('utf-8'))} bytes are shown; "
        "`costbrake report --days 7` prints all of it]\n"
    )


def test_given_a_single_huge_line_when_fitted_then_cut_on_a_character_boundary():
    text = "é" * 10_000

    fitted, truncated = fit_message(text, 7, max_bytes=1000)

    assert truncated and len(fitted.encode("utf-8")) <= 1000
    assert fitted.startswith("é" * 100) and "\ufffd" not in fitted
