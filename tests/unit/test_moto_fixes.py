"""The local moto server's fixes keep DynamoDB's behaviour: all-or-nothing transactions, normalised numbers;
applied for a block (or a test, the ``fixed_moto`` fixture) they are gone after it."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from costbrake.local import moto_fixes
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType


@pytest.fixture
def dynamodb(fixed_moto: None) -> Iterator[object]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        client.put_item(TableName="t", Item={"pk": {"S": "c"}, "s": {"S": "text"}})
        yield client


def _n(client, pk: str) -> str | None:
    item = client.get_item(TableName="t", Key={"pk": {"S": pk}}).get("Item")
    return item["n"]["N"] if item else None


def add(pk: str, amount: str, condition: str | None = None, values: dict | None = None) -> dict:
    update = {
        "TableName": "t",
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": "ADD n :v",
        "ExpressionAttributeValues": {":v": {"N": amount}, **(values or {})},
    }
    if condition:
        update["ConditionExpression"] = condition
    return {"Update": update}


def test_given_all_conditions_hold_when_transacting_then_every_write_applies(dynamodb):
    dynamodb.transact_write_items(TransactItems=[add("a", "2"), add("b", "5")])

    assert (_n(dynamodb, "a"), _n(dynamodb, "b")) == ("3", "5")


def test_given_one_failing_condition_when_transacting_then_nothing_applies_and_the_reason_is_named(dynamodb):
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[add("b", "5"), add("a", "2", "n <= :max", {":max": {"N": "0"}})])

    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert (_n(dynamodb, "a"), _n(dynamodb, "b")) == ("1", None)


def test_given_a_write_that_fails_while_applying_then_earlier_writes_are_rolled_back(dynamodb):
    bad = {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "ADD s :v",
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        }
    }  # ADD of a number to a string

    with pytest.raises(ClientError) as failed:
        dynamodb.transact_write_items(TransactItems=[add("b", "5"), add("a", "2"), bad])

    assert "MultipleTransactions" not in str(failed.value)
    assert (_n(dynamodb, "a"), _n(dynamodb, "b")) == ("1", None)
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "c"}})["Item"]["s"] == {"S": "text"}


def test_given_amounts_that_cancel_out_when_added_then_stored_as_zero_and_addable_again(dynamodb):
    dynamodb.transact_write_items(TransactItems=[add("z", "0.0075000")])
    dynamodb.transact_write_items(TransactItems=[add("z", "-0.0075")])

    assert _n(dynamodb, "z") == "0"
    dynamodb.transact_write_items(TransactItems=[add("z", "3")])
    assert _n(dynamodb, "z") == "3"


def _moto_methods() -> tuple[object, ...]:
    return DynamoDBBackend.transact_write_items, DynamoType.__add__, DynamoType.__sub__


def test_given_the_fixes_applied_for_a_block_when_it_ends_then_moto_is_as_it_was():
    before = _moto_methods()

    with moto_fixes.patched():
        during = _moto_methods()

    assert during == (moto_fixes.transact_write_items, moto_fixes._add, moto_fixes._sub)
    assert _moto_methods() == before


def test_given_installs_nested_when_undone_in_turn_then_each_undo_restores_what_it_found():
    before = _moto_methods()
    undo_outer = moto_fixes.install()
    undo_inner = moto_fixes.install()

    undo_inner()
    still_fixed = _moto_methods()
    undo_outer()

    assert still_fixed == (moto_fixes.transact_write_items, moto_fixes._add, moto_fixes._sub)
    assert _moto_methods() == before


def test_given_a_failing_block_when_it_raises_then_the_fixes_are_undone_all_the_same():
    before = _moto_methods()

    with pytest.raises(RuntimeError), moto_fixes.patched():
        raise RuntimeError("boom")

    assert _moto_methods() == before
