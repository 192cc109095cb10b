"""The local stream poller delivers DynamoDB-stream events the way Lambda's event source mapping does."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
    DynamoDBStreamModel,
)
from costbrake.local.streams import StreamPoller, StreamSubscription, streams_client, subscriptions_from_template
from costbrake.local.template import create_tables, load_template
from moto import mock_aws


@dataclass
class StreamTable:
    dynamodb: Any
    streams: Any
    name: str

    def put_calls(self, *request_ids: str) -> None:
        for request_id in request_ids:
            self.dynamodb.put_item(
                TableName=self.name,
                Item={"request_id": {"S": request_id}, "cost_usd": {"N": "0.0125"}, "feature": {"S": "chat"}},
            )

    @property
    def stream_arn(self) -> str:
        return str(self.dynamodb.describe_table(TableName=self.name)["Table"]["LatestStreamArn"])


@dataclass
class Consumer:
    """A stream handler that records what it got and fails the records it is told to."""

    raises: bool = False  # fail by raising (a function error) instead of reporting batchItemFailures
    failures_left: dict[str, float] = field(default_factory=dict)  # request id -> deliveries that fail
    batches: list[list[str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        request_ids = [record["dynamodb"]["Keys"]["request_id"]["S"] for record in event["Records"]]
        self.batches.append(request_ids)
        failed = [
            record for record, request_id in zip(event["Records"], request_ids, strict=True) if self._fails(request_id)
        ]
        if failed and self.raises:
            raise RuntimeError("consumer failed")
        return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]} for record in failed]}

    def _fails(self, request_id: str) -> bool:
        left = self.failures_left.get(request_id, 0)
        if left <= 0:
            return False
        self.failures_left[request_id] = left - 1
        return True


@pytest.fixture
def table() -> Iterator[StreamTable]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        names = create_tables(dynamodb, load_template(), "streams")
        yield StreamTable(dynamodb, streams_client(region_name="us-east-1"), names["CallsTable"])


@pytest.fixture
def discarded() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def poller_for(table: StreamTable, discarded, clock) -> Callable[..., StreamPoller]:
    def make(consumer: Consumer, **settings: Any) -> StreamPoller:
        subscription = StreamSubscription(table.name, consumer, on_failure=discarded.append, **settings)
        return StreamPoller(table.streams, table.dynamodb, [subscription], poll_interval=0.01, clock=clock)

    return make


def sequence_numbers(consumer: Consumer) -> dict[str, str]:
    return {
        record["dynamodb"]["Keys"]["request_id"]["S"]: record["dynamodb"]["SequenceNumber"]
        for event in consumer.events
        for record in event["Records"]
    }


def test_given_five_records_and_batch_size_two_when_drained_then_each_delivered_once_in_order(table, poller_for):
    consumer = Consumer()
    poller = poller_for(consumer, batch_size=2)
    table.put_calls("r0", "r1", "r2", "r3", "r4")

    poller.drain()

    assert consumer.batches == [["r0", "r1"], ["r2", "r3"], ["r4"]]


def test_given_inserted_call_when_delivered_then_event_has_lambdas_dynamodb_stream_shape(table, poller_for):
    consumer = Consumer()
    poller = poller_for(consumer)
    table.dynamodb.put_item(
        TableName=table.name,
        Item={"request_id": {"S": "r0"}, "cost_usd": {"N": "0.0125"}, "hash": {"B": b"\x00\xff"}},
    )
    table.dynamodb.update_item(
        TableName=table.name,
        Key={"request_id": {"S": "r0"}},
        UpdateExpression="SET tags = :tags",
        ExpressionAttributeValues={":tags": {"M": {"raw": {"L": [{"B": b"\x01"}]}}}},
    )
    table.dynamodb.delete_item(TableName=table.name, Key={"request_id": {"S": "r0"}})

    poller.drain()

    (event,) = consumer.events
    json.dumps(event)  # Lambda's event is JSON: no bytes, no datetimes
    parsed = DynamoDBStreamModel.model_validate(event)
    assert [record.eventName for record in parsed.Records] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = event["Records"]
    assert {record["eventSourceARN"] for record in event["Records"]} == {table.stream_arn}
    assert {record["eventVersion"] for record in event["Records"]} == {"1.1"}
    assert insert["awsRegion"] == "us-east-1"
    assert insert["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
    assert insert["dynamodb"]["Keys"] == {"request_id": {"S": "r0"}}
    assert insert["dynamodb"]["NewImage"] == {
        "request_id": {"S": "r0"},
        "cost_usd": {"N": "0.0125"},
        "hash": {"B": "AP8="},
    }
    assert isinstance(insert["dynamodb"]["ApproximateCreationDateTime"], int)
    assert modify["dynamodb"]["NewImage"]["tags"] == {"M": {"raw": {"L": [{"B": "AQ=="}]}}}
    assert "NewImage" not in remove["dynamodb"]
    assert int(insert["dynamodb"]["SequenceNumber"]) < int(modify["dynamodb"]["SequenceNumber"])


def test_given_handler_reports_one_failed_item_when_polled_then_it_and_later_records_come_again(table, poller_for):
    consumer = Consumer(failures_left={"r2": 1})
    poller = poller_for(consumer, batch_size=5)
    table.put_calls("r0", "r1", "r2", "r3", "r4")

    poller.drain()

    assert consumer.batches == [["r0", "r1", "r2", "r3", "r4"], ["r2", "r3", "r4"]]


def test_given_several_failed_items_when_polled_then_retry_starts_at_the_lowest_sequence_number(table, poller_for):
    consumer = Consumer(failures_left={"r3": 1, "r1": 1})
    poller = poller_for(consumer, batch_size=5)
    table.put_calls("r0", "r1", "r2", "r3", "r4")

    poller.drain()

    assert consumer.batches == [["r0", "r1", "r2", "r3", "r4"], ["r1", "r2", "r3", "r4"]]


def test_given_record_that_always_fails_when_retries_run_out_then_on_failure_gets_it_and_the_shard_moves_on(
    table, poller_for, discarded, clock
):
    consumer = Consumer(failures_left={"r1": math.inf})
    poller = poller_for(consumer, batch_size=3, maximum_retry_attempts=2)
    table.put_calls("r0", "r1", "r2", "r3", "r4")

    poller.drain()

    assert consumer.batches == [["r0", "r1", "r2"], ["r1", "r2"], ["r1", "r2"], ["r3", "r4"]]
    (failure,) = discarded
    DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(failure)
    sequence = sequence_numbers(consumer)
    assert failure["DDBStreamBatchInfo"] | {
        "approximateArrivalOfFirstRecord": "",
        "approximateArrivalOfLastRecord": "",
    } == {
        "shardId": failure["DDBStreamBatchInfo"]["shardId"],
        "startSequenceNumber": sequence["r1"],
        "endSequenceNumber": sequence["r2"],
        "approximateArrivalOfFirstRecord": "",
        "approximateArrivalOfLastRecord": "",
        "batchSize": 2,
        "streamArn": table.stream_arn,
    }
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert "functionError" not in failure["responseContext"]
    assert failure["timestamp"] == clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")

    table.put_calls("r5")
    poller.drain()
    assert consumer.batches[-1] == ["r5"]


def test_given_handler_raising_on_one_record_when_bisecting_then_the_record_is_isolated_and_discarded(
    table, poller_for, discarded
):
    consumer = Consumer(raises=True, failures_left={"r2": math.inf})
    poller = poller_for(consumer, batch_size=4, maximum_retry_attempts=1, bisect_on_error=True)
    table.put_calls("r0", "r1", "r2", "r3")

    poller.drain()

    assert consumer.batches == [["r0", "r1", "r2", "r3"], ["r0", "r1"], ["r2", "r3"], ["r2"], ["r2"], ["r3"]]
    (failure,) = discarded
    sequence = sequence_numbers(consumer)
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == sequence["r2"]
    assert failure["DDBStreamBatchInfo"]["endSequenceNumber"] == sequence["r2"]
    assert failure["responseContext"]["functionError"] == "Unhandled"


def test_given_handler_raising_once_without_bisect_when_polled_then_the_whole_batch_is_retried(
    table, poller_for, discarded
):
    consumer = Consumer(raises=True, failures_left={"r1": 1})
    poller = poller_for(consumer, batch_size=3, bisect_on_error=False)
    table.put_calls("r0", "r1", "r2")

    poller.drain()

    assert consumer.batches == [["r0", "r1", "r2"], ["r0", "r1", "r2"]]
    assert discarded == []


def test_given_unknown_item_identifier_when_reported_then_the_whole_batch_is_retried(table):
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": [{"itemIdentifier": ""}]} if len(calls) == 1 else {"batchItemFailures": []}

    poller = StreamPoller(table.streams, table.dynamodb, [StreamSubscription(table.name, handler)])
    table.put_calls("r0", "r1")

    poller.drain()

    assert calls == [2, 2]


def test_given_report_batch_item_failures_off_when_handler_reports_failures_then_they_are_ignored(table, poller_for):
    consumer = Consumer(failures_left={"r0": 1})
    poller = poller_for(consumer, report_batch_item_failures=False)
    table.put_calls("r0", "r1")

    poller.drain()

    assert consumer.batches == [["r0", "r1"]]


def test_given_no_new_records_when_polled_then_handler_is_not_called(table, poller_for):
    consumer = Consumer()
    poller = poller_for(consumer)

    assert poller.poll_once() == 0
    table.put_calls("r0")
    poller.drain()
    assert poller.poll_once() == 0

    assert consumer.batches == [["r0"]]


def test_given_drained_stream_when_more_records_arrive_then_delivery_continues_where_it_left_off(table, poller_for):
    consumer = Consumer()
    poller = poller_for(consumer, batch_size=10)
    table.put_calls("r0", "r1")
    poller.drain()

    table.put_calls("r2", "r3")
    delivered = poller.poll_once()

    assert delivered == 2
    assert consumer.batches == [["r0", "r1"], ["r2", "r3"]]


def test_given_two_subscriptions_on_one_table_when_drained_then_each_reads_the_stream_on_its_own(table):
    first, second = Consumer(), Consumer(failures_left={"r0": 1})
    poller = StreamPoller(
        table.streams,
        table.dynamodb,
        [StreamSubscription(table.name, first), StreamSubscription(table.name, second)],
    )
    table.put_calls("r0", "r1")

    poller.drain()

    assert first.batches == [["r0", "r1"]]
    assert second.batches == [["r0", "r1"], ["r0", "r1"]]


def test_given_infinite_retries_and_a_poison_record_when_drained_then_timeout_error(table, poller_for):
    consumer = Consumer(failures_left={"r0": math.inf})
    poller = poller_for(consumer, maximum_retry_attempts=-1)
    table.put_calls("r0")

    with pytest.raises(TimeoutError):
        poller.drain(timeout=0.2)


def test_given_started_poller_when_records_arrive_then_the_background_thread_delivers_them(table):
    delivered = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> None:
        assert context.function_name == "stream-consumer"
        delivered.set()

    poller = StreamPoller(
        table.streams, table.dynamodb, [StreamSubscription(table.name, handler)], poll_interval=0.01
    ).start()
    try:
        table.put_calls("r0")
        assert delivered.wait(timeout=5)
    finally:
        poller.stop()


# -- subscriptions_from_template -----------------------------------------------------------------------------


def _consumer_template(**aggregator_event: Any) -> dict[str, Any]:
    return {
        "Resources": {
            "CallsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "AggregatorFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Calls": {
                            "Type": "DynamoDB",
                            "Properties": {
                                "Stream": {"Fn::GetAtt": ["CallsTable", "StreamArn"]},
                                "StartingPosition": "TRIM_HORIZON",
                                "BatchSize": 50,
                                "MaximumRetryAttempts": 4,
                                "BisectBatchOnFunctionError": True,
                                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                                "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": "arn"}},
                            }
                            | aggregator_event,
                        }
                    }
                },
            },
            "AnomalyFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Calls": {
                            "Type": "DynamoDB",
                            "Properties": {
                                "Stream": {"Fn::GetAtt": "CallsTable.StreamArn"},
                                "StartingPosition": "LATEST",
                            },
                        },
                        "Hourly": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}},
                    }
                },
            },
            "GatewayFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"Api": {"Type": "Api", "Properties": {"Path": "/v1/models"}}}},
            },
            "ReporterFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Calls": {
                            "Type": "DynamoDB",
                            "Properties": {"Stream": {"Fn::GetAtt": ["CallsTable", "StreamArn"]}},
                        }
                    }
                },
            },
        }
    }


def _handler(event: dict[str, Any], context: Any) -> None:
    return None


def _other_handler(event: dict[str, Any], context: Any) -> None:
    return None


def test_given_template_with_dynamodb_events_when_read_then_subscriptions_carry_its_settings():
    dead_letters: list[dict[str, Any]] = []
    handlers = {"AggregatorFunction": _handler, "AnomalyFunction": _other_handler, "GatewayFunction": _handler}

    subscriptions = subscriptions_from_template(
        _consumer_template(), {"CallsTable": "local-CallsTable"}, handlers, on_failure=dead_letters.append
    )

    assert subscriptions == [
        StreamSubscription(
            table_name="local-CallsTable",
            handler=_handler,
            batch_size=50,
            maximum_retry_attempts=4,
            bisect_on_error=True,
            on_failure=dead_letters.append,
            report_batch_item_failures=True,
            function_name="AggregatorFunction",
        ),
        StreamSubscription(
            table_name="local-CallsTable",
            handler=_other_handler,
            batch_size=100,
            maximum_retry_attempts=-1,
            bisect_on_error=False,
            on_failure=None,
            report_batch_item_failures=False,
            function_name="AnomalyFunction",
        ),
    ]


def test_given_disabled_event_source_when_read_then_no_subscription():
    subscriptions = subscriptions_from_template(
        _consumer_template(Enabled=False), {"CallsTable": "t"}, {"AggregatorFunction": _handler}
    )

    assert subscriptions == []


@pytest.mark.parametrize(
    ("aggregator_event", "table_names", "message"),
    [
        ({"BatchSize": {"Ref": "StreamBatchSize"}}, {"CallsTable": "t"}, "intrinsic"),
        ({}, {"LedgerTable": "t"}, "not a table"),
        ({"Stream": "arn:aws:dynamodb:us-east-1:1:table/x/stream/y"}, {"CallsTable": "t"}, "StreamArn"),
    ],
    ids=["intrinsic setting", "unknown table", "literal stream arn"],
)
def test_given_event_source_the_poller_cannot_follow_when_read_then_value_error(aggregator_event, table_names, message):
    with pytest.raises(ValueError, match=message):
        subscriptions_from_template(
            _consumer_template(**aggregator_event), table_names, {"AggregatorFunction": _handler}
        )
