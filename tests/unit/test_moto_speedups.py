"""moto's UpdateItem fast path gives the items moto itself gives, and leaves what it does not handle to moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto.dynamodb.responses as dynamodb_responses
import pytest
from costbrake.local import moto_fixes, moto_speedups
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
    ("REMOVE #t", {"#t": "tier"}, {}),  # not a plain SET/ADD: moto's own path
    ("SET #m.x = :v", {"#m": "nested"}, {":v": {"N": "1"}}),  # a path: moto's own path (and its error)
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


def test_given_plain_updates_when_the_fast_path_is_installed_then_items_are_what_moto_makes(client, monkeypatch):
    moto_fixes.install()
    reference = _apply_all(client)
    client.delete_item(TableName="ledger", Key={"pk": {"S": "ctr#user#u1"}, "sk": {"S": "2026-11"}})

    monkeypatch.setattr(moto_speedups, "_ORIGINAL", None)
    monkeypatch.setattr(DynamoDBBackend, "update_item", DynamoDBBackend.update_item)
    lex = ConditionExpressionParser._lex_condition_expression
    monkeypatch.setattr(ConditionExpressionParser, "_lex_condition_expression", lex)
    monkeypatch.setattr(dynamodb_responses, "UpdateExpressionParser", dynamodb_responses.UpdateExpressionParser)
    moto_speedups.install()
    fast = _apply_all(client)

    assert fast == reference
    assert fast[0]["committed"] == {"N": "0.0075"} and fast[1]["committed"] == {"N": "0"}
