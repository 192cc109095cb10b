"""moto's UpdateItem fast path gives the items moto itself gives, and leaves what it does not handle to moto;
applied for a block, it is gone after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto.dynamodb.responses as dynamodb_responses
import pytest
from costbrake.local import moto_fixes, moto_speedups
from costbrake.local.moto_server import MotoServer
from costbrake.local.streams import streams_client
from moto import mock_aws
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models import DynamoDBBackend

UPDATES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "ADD #c :a, #n :one SET #e = :e",
        {"#c": "committed", "#n": "calls", "#e": "expires_at"},
        {":a": {"N": "0.0075"}, ":one": {"N": "1"}, ":e": {"N": "1790000000"}},
    ),
    ("ADD #c :a", {"#c": "committed"}, {":a": {"N": "-0.0075"}}),
    ("SET #t = :t", {"#t": "tier"}, {":t": {"S": "pro"}}),
    ("REMOVE #t", {"#t": "tier"}, {}),
    (
        "SET #r = :r, #a = if_not_exists(#a, :a), #b = if_not_exists(#b, :b) ADD #v :one REMOVE #o",
        {"#r": "r:req1", "#a": "release_after", "#b": "sweep_bucket", "#v": "rv", "#o": "r:req0"},
        {":r": {"S": "[1, 2]"}, ":a": {"N": "1790000000"}, ":b": {"S": "b#3"}, ":one": {"N": "1"}},
    ),
    ("REMOVE #r, #v", {"#r": "r:req1", "#v": "rv"}, {}),
    ("SET #a = if_not_exists(#b, :a)", {"#a": "x", "#b": "y"}, {":a": {"N": "1"}}),  # another attribute: moto's
    ("SET #m.x = :v", {"#m": "nested"}, {":v": {"N": "1"}}),  # a path: moto's own path (and its error)
    ("SET #t = :big", {"#t": "tier"}, {":big": {"S": "x" * 410_000}}),  # above 400 KB: refused as moto refuses
]


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def _apply_all(dynamodb: Any) -> list[Any]:
    outcomes = []
    for expression, names, values in UPDATES * 2:  # the second round updates existing items
        request: dict[str, Any] = {
            "TableName": "ledger",
            "Key": {"pk": {"S": "ctr#user#u1"}, "sk": {"S": "2026-11"}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            dynamodb.update_item(**request)
            outcomes.append(dynamodb.get_item(TableName="ledger", Key=request["Key"], ConsistentRead=True)["Item"])
        except dynamodb.exceptions.ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    return outcomes


def test_given_plain_updates_when_the_fast_path_is_installed_then_items_are_what_moto_makes(client, fixed_moto):
    reference = _apply_all(client)
    client.delete_item(TableName="ledger", Key={"pk": {"S": "ctr#user#u1"}, "sk": {"S": "2026-11"}})

    with moto_speedups.patched():
        fast = _apply_all(client)

    assert fast == reference
    assert fast[0]["committed"] == {"N": "0.0075"} and fast[1]["committed"] == {"N": "0"}


def _moto_parts() -> tuple[object, ...]:
    return (
        DynamoDBBackend.update_item,
        ConditionExpressionParser._lex_condition_expression,
        dynamodb_responses.UpdateExpressionParser,
    )


def test_given_the_speedups_applied_for_a_block_when_it_ends_then_moto_is_as_it_was():
    before = _moto_parts()

    with moto_speedups.patched():
        during = _moto_parts()

    assert during[0] is moto_speedups.update_item and during[1] is moto_speedups._lex_condition_expression
    assert isinstance(during[2], moto_speedups._ParsedOnce)
    assert _moto_parts() == before and moto_speedups._ORIGINAL is None


def test_given_speedups_already_in_place_when_installed_again_then_only_the_first_undo_removes_them():
    before = _moto_parts()

    with moto_speedups.patched():
        moto_speedups.install()()  # nothing to undo: the outer block's patches stay
        still_fast = _moto_parts()

    assert still_fast[0] is moto_speedups.update_item
    assert _moto_parts() == before


def test_given_moto_server_in_this_process_when_stopped_then_its_fixes_and_speedups_are_undone():
    before = (*_moto_parts(), DynamoDBBackend.transact_write_items)
    server = MotoServer(in_process=True)  # (its own process, as `costbrake local` runs it, keeps them for life)
    server.start()
    try:
        running = (*_moto_parts(), DynamoDBBackend.transact_write_items)
    finally:
        server.stop()

    assert running[0] is moto_speedups.update_item and running[3] is moto_fixes.transact_write_items
    assert (*_moto_parts(), DynamoDBBackend.transact_write_items) == before


def _stream_records(dynamodb: Any, streams: Any) -> list[Any]:
    arn = dynamodb.describe_table(TableName="calls")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]


def _streamed_table(dynamodb: Any, name: str, key: str, view: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
    )


def test_given_stream_records_when_read_through_the_fast_path_then_they_are_what_moto_serializes():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        streams = streams_client()
        _streamed_table(dynamodb, "calls", "request_id", "NEW_AND_OLD_IMAGES")
        item = {"request_id": {"S": "r1"}, "cost_usd": {"N": "0.0001"}, "stream": {"BOOL": True}, "n": {"NULL": True}}
        dynamodb.put_item(TableName="calls", Item=item)
        dynamodb.put_item(TableName="calls", Item=item | {"cost_usd": {"N": "0.0002"}, "tags": {"L": [{"S": "a"}]}})
        by_moto = _stream_records(dynamodb, streams)

        with moto_speedups.patched():
            fast = _stream_records(dynamodb, streams)

    assert [r["eventName"] for r in fast] == ["INSERT", "MODIFY"]
    assert fast == by_moto
    assert fast[0]["dynamodb"]["ApproximateCreationDateTime"].tzinfo is not None


def test_given_dynamodb_requests_answered_directly_when_they_fail_then_the_client_sees_dynamodbs_errors():
    server = MotoServer(in_process=True)
    url = server.start()
    try:
        credentials = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
        dynamodb = boto3.client("dynamodb", endpoint_url=url, **credentials)
        with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
            dynamodb.describe_table(TableName="missing")
        _streamed_table(dynamodb, "t", "pk", "NEW_IMAGE")
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}})
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
        streams = boto3.client(
            "dynamodbstreams",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
        assert [s["TableName"] for s in streams.list_streams()["Streams"]] == ["t"]
    finally:
        server.stop()
