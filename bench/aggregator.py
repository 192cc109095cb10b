"""Aggregator benchmark: records per second in-process, and DynamoDB writes per 100-record batch.

Runs the real processor (Powertools BatchProcessor, PynamoDB transactions) against moto in-process, with the
local stack's moto fixes. End-to-end throughput is bounded by moto's update-expression evaluation, so the pure
part (parse, coalesce, group) is timed on its own as well. Write counts are exact; times depend on the machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.dal.calls import call_item
from costbrake.dal.rollups import MAX_TRANSACTION_ITEMS, RollupStore
from costbrake.dal.tables import Tables
from costbrake.local import moto_fixes
from costbrake.local.faults import RequestCounter
from costbrake.local.template import create_tables, load_template
from costbrake.pipeline.aggregator import RollupBatchProcessor, parse_stream_record
from costbrake.pipeline.rollups import coalesce, distinct_calls, plan_transactions
from costbrake.records import CallRecord
from moto import mock_aws

from bench.calls import bench_call

BATCH = 100
SHARDS = 8
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/bench-CallsTable/stream/2026-11-24T00:00:00.000"


def _call(n: int, users: int, features: int = 1, models: int = 1) -> CallRecord:
    return bench_call(
        f"bench-{n:07d}",
        timestamp=START + timedelta(seconds=n % 3600),
        user_id=f"user{n % users}",
        feature=f"feature{n % features}",
        model=f"model{n % models}",
    )


def _shared(call: CallRecord, sequence: int) -> dict[str, Any]:
    """What the gateway's settle writes for the aggregator: the call's global and feature shards (8 each), owed
    the difference between its cost and its reservation."""
    shard = sequence % SHARDS
    counters = [[f"ctr#global#{shard}", "m#2026-11"], [f"ctr#feature#{call.feature}#{shard}", "m#2026-11"]]
    return {"shared_counters": {"S": json.dumps(counters)}, "shared_delta": {"N": "-0.0015"}}


def _record(call: CallRecord, sequence: int) -> dict[str, Any]:
    return {
        "eventID": f"{sequence:032x}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
        "dynamodb": {
            "ApproximateCreationDateTime": int(call.timestamp.timestamp()),
            "Keys": {"request_id": {"S": call.request_id}},
            "NewImage": call_item(call).serialize() | _shared(call, sequence),
            "SequenceNumber": str(10**20 + sequence),
            "SizeBytes": 700,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def _batches(count: int, users: int, features: int = 4, models: int = 3) -> list[list[dict[str, Any]]]:
    records = [_record(_call(n, users, features, models), n) for n in range(count * BATCH)]
    return [records[start : start + BATCH] for start in range(0, len(records), BATCH)]


def pure_records_per_second(batches: list[list[dict[str, Any]]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        calls = [parse_stream_record(DynamoDBRecord(raw)) for raw in batch]
        for group in plan_transactions(distinct_calls(call for call in calls if call), MAX_TRANSACTION_ITEMS):
            coalesce(group)
    return sum(map(len, batches)) / (time.perf_counter() - started)


class _Moto:
    """moto in-process with the tables from template.yaml, and the aggregator's processor on them."""

    def __enter__(self) -> _Moto:
        self._mock = mock_aws()
        self._mock.start()
        self._undo_fixes = moto_fixes.install()
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), load_template(), "bench")
        settings = Settings(ledger_table="bench-LedgerTable", calls_table="bench-CallsTable")
        self.store = RollupStore.of(Tables.connect(settings), settings, sleep=lambda _: None)
        self.requests = RequestCounter().install(self.store.client)
        self.processor = RollupBatchProcessor(self.store, ManualClock(START))
        return self

    def __exit__(self, *exc: object) -> None:
        self._undo_fixes()
        self._mock.stop()

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        response = process_partial_response({"Records": batch}, parse_stream_record, self.processor)
        assert not response["batchItemFailures"], response


def end_to_end_records_per_second(batches: list[list[dict[str, Any]]]) -> float:
    with _Moto() as moto:
        started = time.perf_counter()
        for batch in batches:
            moto.deliver(batch)
        return sum(map(len, batches)) / (time.perf_counter() - started)


def writes_per_batch(users: int) -> dict[str, Any]:
    """One 100-record batch of one hour, one feature and one model, spread over ``users`` users."""
    [batch] = _batches(1, users, features=1, models=1)
    distinct_keys = len(coalesce(distinct_calls(c for raw in batch if (c := parse_stream_record(DynamoDBRecord(raw))))))
    with _Moto() as moto:
        moto.deliver(batch)
        stats = moto.store.stats
        first = {
            "users": users,
            "distinct_rollup_keys": distinct_keys,
            "transactions": stats.transactions,
            "items_written": stats.items_written,
            "rollup_updates": stats.rollup_updates,
            "counter_settles": stats.counter_settles,
            "markers": stats.items_written - stats.rollup_updates - stats.counter_settles,
            "requests": moto.requests.total,
        }
        moto.requests.reset()
        moto.deliver(batch)  # the same batch again: a redelivery
        return first | {"redelivery_requests": moto.requests.total}


def run(report: Callable[[str], None] = print) -> dict[str, Any]:
    batches = _batches(20, users=40)
    results: dict[str, Any] = {
        "pure_records_per_second": pure_records_per_second(batches),
        "end_to_end_records_per_second": end_to_end_records_per_second(batches),
        "writes": [writes_per_batch(users) for users in (1, 5, 10, 20, 40, 100)],
    }
    report("== aggregator ==")
    report(
        f"records/s, in-process end to end (moto)   : {results['end_to_end_records_per_second']:,.0f}"
        " (moto's update evaluation dominates)"
    )
    report(f"records/s, parse + coalesce + group only : {results['pure_records_per_second']:,.0f}")
    report(
        f"DynamoDB writes per {BATCH}-record batch, one hour, {SHARDS} global and {SHARDS} feature shards"
        f" (uncoalesced: {BATCH} markers + {BATCH * 8} rollup updates + {BATCH * 2} shard settles):"
    )
    report("  users  distinct keys  transactions  items written = markers + rollups + shards  redelivered: requests")
    for row in results["writes"]:
        written = f"{row['items_written']} = {row['markers']} + {row['rollup_updates']} + {row['counter_settles']}"
        report(
            f"  {row['users']:>5}  {row['distinct_rollup_keys']:>13}  {row['transactions']:>12}"
            f"  {written:>42}  {row['redelivery_requests']:>21}"
        )
    return results


if __name__ == "__main__":
    run()
