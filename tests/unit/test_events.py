"""Every sample event in events/ (for `sam local invoke`) runs through the gateway handler."""

from __future__ import annotations

import importlib.util
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from costbrake.config import load_settings
from costbrake.dal.rollups import RollupStore
from costbrake.dal.tables import Tables
from costbrake.gateway.asgi import build_app
from costbrake.local.app_client import AppClient
from costbrake.local.lambda_gateway import LambdaContext, request_of
from costbrake.local.mock_provider import MockProvider

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
API_EVENTS = [  # events/ also holds a stream batch and a schedule event for the pipeline functions
    path for path in sorted(EVENTS_DIR.glob("*.json")) if "httpMethod" in json.loads(path.read_text())
]
SAMPLE_KEY = "cb-sample-events-key"
# The other events and the function each one is a sample for (each is run through it below).
PIPELINE_EVENTS = {"stream_batch.json": "aggregator", "schedule.json": "sweeper", "reporter_schedule.json": "reporter"}


@pytest.fixture
def gateway_app(make_gateway, mock_settings, mock) -> Iterator[tuple[AppClient, MockProvider]]:
    gateway = make_gateway(mock_settings, secret=SAMPLE_KEY, user_id="sample-user", tier="free")
    with AppClient(build_app(gateway)) as client:
        yield client, mock


def test_given_events_folder_then_every_event_is_an_api_route_sample_or_a_known_pipeline_sample():
    assert {p.name for p in EVENTS_DIR.glob("*.json")} == {p.name for p in API_EVENTS} | set(PIPELINE_EVENTS)
    assert all((EVENTS_DIR.parent / "functions" / name / "app.py").is_file() for name in PIPELINE_EVENTS.values())


def test_given_events_folder_then_every_route_has_a_sample():
    assert {(json.loads(p.read_text())["httpMethod"], json.loads(p.read_text())["path"]) for p in API_EVENTS} == {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/messages"),
        ("GET", "/v1/models"),
        ("GET", "/v1/budget"),
    }


@pytest.mark.parametrize("event_file", API_EVENTS, ids=[p.stem for p in API_EVENTS])
def test_given_sample_event_when_handled_then_200_with_the_routes_answer(gateway_app, event_file):
    """Each API Gateway sample, turned into the request the Lambda Web Adapter hands the app (sam local invoke
    runs the same event through the adapter)."""
    client, mock = gateway_app
    event = json.loads(event_file.read_text())

    response = client.request(*request_of(event))

    assert response.status_code == 200, response.text
    if json.loads(event["body"] or "{}").get("stream"):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.text.startswith(("data: ", "event: "))
        assert ": costbrake cost_usd=" in response.text
    else:
        assert response.json()
    if event["httpMethod"] == "POST":
        assert len(mock.requests) == 1


@pytest.fixture
def function_app(stores, settings, monkeypatch):
    """Loads functions/<name>/app.py as Lambda would, with the deployment's environment pointing at moto."""
    monkeypatch.setenv("COSTBRAKE_LEDGER_TABLE", settings.ledger_table)
    monkeypatch.setenv("COSTBRAKE_CALLS_TABLE", settings.calls_table)
    for endpoint in ("COSTBRAKE_DYNAMODB_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(endpoint, raising=False)
    load_settings.cache_clear()

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_app", EVENTS_DIR.parent / "functions" / name / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield load
    load_settings.cache_clear()


def test_given_sample_stream_batch_when_aggregated_then_no_failures_and_rollups_written(function_app, settings):
    event = json.loads((EVENTS_DIR / "stream_batch.json").read_text())
    context = LambdaContext("costbrake-aggregator", "sample", 60, time.monotonic())

    response = function_app("aggregator").lambda_handler(event, context)

    assert response == {"batchItemFailures": []}
    image = event["Records"][0]["dynamodb"]["NewImage"]
    day = "d#" + image["timestamp"]["S"][:10]
    totals = RollupStore.of(Tables.connect(settings), settings).rollups_for("global", [day])
    assert totals[day].calls == len(event["Records"])


def test_given_sample_schedule_event_when_swept_then_the_sweeper_answers(function_app):
    event = json.loads((EVENTS_DIR / "schedule.json").read_text())
    context = LambdaContext("costbrake-sweeper", "sample", 60, time.monotonic())

    assert function_app("sweeper").lambda_handler(event, context) == {"released": 0, "released_usd": "0"}


def test_given_reporter_schedule_event_when_handled_then_the_weeks_report_reaches_a_subscriber(
    function_app, stores, call_record, monkeypatch
):
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic_arn = sns.create_topic(Name="costbrake-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("COSTBRAKE_ALERT_TOPIC_ARN", topic_arn)
    now = datetime.now(UTC)  # the handler reads the system clock, as in Lambda
    for n, (cost, age) in enumerate([("0.75", timedelta(hours=2)), ("4", timedelta(days=5)), ("9", timedelta(days=9))]):
        record = call_record(request_id=f"sample-{n}", cost_usd=Decimal(cost), timestamp=now - age)
        stores.spend.settle(record.request_id, [], record.cost_usd, record)
    event = json.loads((EVENTS_DIR / "reporter_schedule.json").read_text())
    context = LambdaContext("costbrake-reporter", "sample", 300, time.monotonic())

    result = function_app("reporter").lambda_handler(event, context)

    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert {name: value["Value"] for name, value in envelope["MessageAttributes"].items()} == {
        "type": "cost_report",
        "severity": "info",
        "feature": "global",
    }
    assert envelope["Subject"] == f"costbrake weekly cost report {now - timedelta(days=7):%Y-%m-%d}..{now:%Y-%m-%d}"
    assert re.search(r"^  cost +\$4\.75 over 2 calls", envelope["Message"], re.MULTILINE), envelope["Message"]
    assert result == {
        "message_id": envelope["MessageId"],
        "subject": envelope["Subject"],
        "calls": 2,
        "cost_usd": "4.75",
        "truncated": False,
    }
