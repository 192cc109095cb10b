"""The aggregator on the calls stream: each call counted exactly once, failures reported per record."""

from __future__ import annotations

import importlib.util
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.awsrequest import AWSResponse, HTTPHeaders
from costbrake.config import load_settings
from costbrake.dal.calls import call_item
from costbrake.dal.rollups import RollupStore
from costbrake.dal.tables import Tables
from costbrake.local.faults import ConflictInjector
from costbrake.local.lambda_gateway import LambdaContext
from costbrake.pipeline.aggregator import RollupBatchProcessor, parse_stream_record
from costbrake.pipeline.rollups import Totals
from costbrake.records import CallRecord
from costbrake.windows import Window, span

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/unit-CallsTable/stream/2026-11-24T00:00:00.000"
APP = Path(__file__).parents[2] / "functions" / "aggregator" / "app.py"
START = datetime(2026, 11, 24, 9, 50, tzinfo=UTC)


@pytest.fixture
def store(stores, settings) -> RollupStore:
    # ``ledger`` brings moto_fixes: moto's own TransactWriteItems copies the whole table per item (minutes here).
    return RollupStore.of(Tables.connect(settings), settings, sleep=lambda _: None)


@pytest.fixture
def processor(store, clock) -> RollupBatchProcessor:
    return RollupBatchProcessor(store, clock)


@pytest.fixture
def calls(call_record) -> list[CallRecord]:
    """150 calls of 30 users over two features, two models, three hours and two days (more than one transaction)."""
    return [
        call_record(
            request_id=f"req-{n:03d}",
            timestamp=START + timedelta(minutes=7 * n),
            user_id=f"user{n % 30}",
            feature=("chat", "analysis")[n % 2],
            model=("gpt-4o", "claude-sonnet-4-5")[n % 3 == 0],
            cost_usd=Decimal(n + 1) / 1000,
            input_tokens=100 + n,
            output_tokens=10 + n,
            cache_read_tokens=50 if n % 4 == 0 else 0,
            truncated=n % 5 == 0,
            status="error" if n % 7 == 0 else "ok",
        )
        for n in range(150)
    ]


def stream_record(record: CallRecord, sequence: int, event_name: str = "INSERT") -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (NEW_IMAGE view of the gateway's call item)."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": int(record.timestamp.timestamp()),
        "Keys": {"request_id": {"S": record.request_id}},
        "SequenceNumber": f"{4_000_000_000_000_000_000 + sequence}",
        "SizeBytes": 700,
        "StreamViewType": "NEW_IMAGE",
    }
    if event_name != "REMOVE":
        dynamodb["NewImage"] = call_item(record).serialize()
    stream = {
        "eventID": f"{sequence:032x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": STREAM_ARN,
    }
    if event_name == "REMOVE":  # a TTL expiry
        stream["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return stream


def deliver(processor: RollupBatchProcessor, records: list[dict[str, Any]]) -> list[str]:
    """Run one Lambda invocation; the sequence numbers it reports as failed."""
    response = process_partial_response({"Records": records}, parse_stream_record, processor)
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def recomputed(records: list[CallRecord]) -> dict[tuple[str, str], Totals]:
    """Rollups from scratch: every distinct call added to its scopes' hour and day."""
    expected: dict[tuple[str, str], Totals] = defaultdict(Totals)
    for record in {record.request_id: record for record in records}.values():
        for scope in ("global", f"feature#{record.feature}", f"model#{record.model}", f"user#{record.user_id}"):
            for window in (f"h#{record.timestamp:%Y-%m-%dT%H}", f"d#{record.timestamp:%Y-%m-%d}"):
                totals = expected[(scope, window)]
                expected[(scope, window)] = replace(
                    totals,
                    cost_usd=totals.cost_usd + record.cost_usd,
                    calls=totals.calls + 1,
                    input_tokens=totals.input_tokens + record.input_tokens,
                    output_tokens=totals.output_tokens + record.output_tokens,
                    cache_read_tokens=totals.cache_read_tokens + record.cache_read_tokens,
                    cache_hits=totals.cache_hits + (record.cache_read_tokens > 0),
                    truncations=totals.truncations + record.truncated,
                    errors=totals.errors + (record.status == "error"),
                )
    return dict(expected)


def stored(store: RollupStore, settings) -> dict[tuple[str, str], Totals]:
    """Every rollup in the ledger table, read back through ``rollups_for``."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    windows: dict[str, list[str]] = defaultdict(list)
    for page in client.get_paginator("scan").paginate(TableName=settings.ledger_table):
        for item in page["Items"]:
            if item["pk"]["S"].startswith("rollup#"):
                windows[item["pk"]["S"].removeprefix("rollup#")].append(item["sk"]["S"])
    return {
        (scope, window): totals
        for scope, keys in windows.items()
        for window, totals in store.rollups_for(scope, keys).items()
    }


def test_given_batch_when_delivered_twice_then_rollups_equal_a_recomputation(processor, store, settings, calls):
    records = [stream_record(call, n) for n, call in enumerate(calls)]

    assert deliver(processor, records) == []
    first_transactions = store.stats.transactions
    assert deliver(processor, records) == []

    assert first_transactions >= 2  # the batch needed more than one transaction
    assert store.stats.duplicates == len(calls)
    assert stored(store, settings) == recomputed(calls)


def test_given_batch_split_and_retried_with_overlaps_then_rollups_equal_a_recomputation(
    processor, store, settings, calls
):
    records = [stream_record(call, n) for n, call in enumerate(calls)]

    for batch in (records[:60], records[40:110], records[100:], records[90:95] * 2, records[::-1]):
        assert deliver(processor, batch) == []

    assert stored(store, settings) == recomputed(calls)


def test_given_poison_record_when_delivered_then_only_it_is_reported_and_the_others_applied(
    processor, store, settings, calls
):
    records = [stream_record(call, n) for n, call in enumerate(calls[:20])]
    poison = stream_record(calls[20], 20)
    del poison["dynamodb"]["NewImage"]["cost_usd"]
    garbled = stream_record(calls[21], 21)
    garbled["dynamodb"]["NewImage"]["input_tokens"] = {"S": "many"}

    failed = deliver(processor, [*records[:10], poison, *records[10:], garbled])

    assert failed == [poison["dynamodb"]["SequenceNumber"], garbled["dynamodb"]["SequenceNumber"]]
    assert stored(store, settings) == recomputed(calls[:20])


def test_given_modify_and_ttl_remove_when_delivered_then_ignored(processor, store, settings, calls):
    deliver(processor, [stream_record(call, n) for n, call in enumerate(calls[:5])])
    changed = replace(calls[0], cost_usd=Decimal("99"))

    failed = deliver(processor, [stream_record(changed, 5, "MODIFY"), stream_record(calls[1], 6, "REMOVE")])

    assert failed == []
    assert stored(store, settings) == recomputed(calls[:5])


def refuse_transactions_with(store: RollupStore, request_id: str) -> None:
    """DynamoDB refuses (AccessDenied) any transaction that writes this call's marker."""
    events = store.client.meta.events
    marker = f"applied#{request_id}"

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        puts = [entry["Put"]["Item"]["pk"]["S"] for entry in params.get("TransactItems", []) if "Put" in entry]
        context["refuse"] = marker in puts

    def refuse(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not context.get("refuse"):
            return None
        parsed = {
            "Error": {"Code": "AccessDeniedException", "Message": "not authorized (injected)"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}},
        }
        return AWSResponse("http://injected", 400, HTTPHeaders(), None), parsed

    events.register("before-parameter-build.dynamodb.TransactWriteItems", remember, unique_id="test-refuse-keys")
    events.register("before-call.dynamodb.TransactWriteItems", refuse, unique_id="test-refuse-call")


def test_given_refused_transaction_when_delivered_then_its_records_reported_and_the_retry_completes(
    processor, store, settings, calls
):
    records = [stream_record(call, n) for n, call in enumerate(calls)]
    refuse_transactions_with(store, calls[-1].request_id)

    failed = deliver(processor, records)

    # Only the refused transaction's records are reported; the rest of the batch is in the rollups.
    by_sequence = {record["dynamodb"]["SequenceNumber"]: record for record in records}
    unwritten = [by_sequence[sequence] for sequence in failed]
    assert 0 < len(unwritten) < len(records)
    assert calls[-1].request_id in {record["dynamodb"]["Keys"]["request_id"]["S"] for record in unwritten}
    written = [
        call for call in calls if call.request_id not in {r["dynamodb"]["Keys"]["request_id"]["S"] for r in unwritten}
    ]
    assert stored(store, settings) == recomputed(written)

    # Lambda retries from the lowest reported sequence number: records after it come back too.
    store.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="test-refuse-call")
    lowest = min(failed, key=int)
    assert (
        deliver(processor, [record for record in records if int(record["dynamodb"]["SequenceNumber"]) >= int(lowest)])
        == []
    )
    assert stored(store, settings) == recomputed(calls)


def test_given_conflicts_and_throttling_when_delivered_then_retried_and_counted_once(processor, store, settings, calls):
    ConflictInjector(throttle_every=2).install(store.client)
    records = [stream_record(call, n) for n, call in enumerate(calls)]

    assert deliver(processor, records) == []

    assert store.stats.retries > 0
    assert stored(store, settings) == recomputed(calls)


def test_given_only_poison_records_when_delivered_then_the_invocation_fails_for_bisection(processor, calls):
    poison = stream_record(calls[0], 0)
    poison["dynamodb"]["NewImage"]["timestamp"] = {"S": "not a time"}

    with pytest.raises(BatchProcessingError):
        deliver(processor, [poison])


def test_given_lambda_environment_when_handler_invoked_then_partial_response(stores, settings, calls, monkeypatch):
    monkeypatch.setenv("COSTBRAKE_LEDGER_TABLE", settings.ledger_table)
    monkeypatch.setenv("COSTBRAKE_CALLS_TABLE", settings.calls_table)
    for endpoint in ("COSTBRAKE_DYNAMODB_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(endpoint, raising=False)  # moto in-process, not a developer's local server
    load_settings.cache_clear()
    spec = importlib.util.spec_from_file_location("aggregator_app", APP)
    assert spec and spec.loader
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    poison = stream_record(calls[1], 1)
    poison["dynamodb"]["NewImage"]["truncated"] = {"S": "yes"}
    context = LambdaContext("costbrake-aggregator", "test", 30, time.monotonic())

    try:
        response = app.lambda_handler({"Records": [stream_record(calls[0], 0), poison]}, context)
    finally:
        load_settings.cache_clear()

    assert response == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    store = RollupStore.of(Tables.connect(settings), settings)
    assert store.rollups_for("user#user0", ["d#2026-11-24"])["d#2026-11-24"].calls == 1


def test_given_rollups_when_top_users_of_the_hour_asked_then_ranked_by_cost(processor, store, calls):
    deliver(processor, [stream_record(record, i) for i, record in enumerate(calls, start=1)])
    hour = span(Window.HOUR, calls[0].timestamp).key
    by_user: dict[str, Decimal] = defaultdict(Decimal)
    for record in calls:
        if span(Window.HOUR, record.timestamp).key == hour:
            by_user[record.user_id] += record.cost_usd

    top = store.top_in_window(hour, "user#", limit=3)

    assert top == sorted(by_user.items(), key=lambda pair: -pair[1])[:3]
