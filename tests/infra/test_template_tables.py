"""Tables are created from template.yaml (one source of truth): what moto ends up with matches the template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from costbrake.local.template import TEMPLATE_ENV_VAR, create_tables, load_template, table_specs
from moto import mock_aws

PREFIX = "cbtest"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def template_tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of each DynamoDB table, read straight from the template."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }


def by_name(attributes: list[dict[str, str]]) -> dict[str, str]:
    return {attribute["AttributeName"]: attribute["AttributeType"] for attribute in attributes}


def test_given_template_when_tables_created_then_keys_indexes_stream_and_ttl_match_it(
    dynamodb: Any, template: dict[str, Any]
) -> None:
    expected_tables = template_tables(template)

    table_names = create_tables(dynamodb, template, PREFIX)

    assert {"LedgerTable", "CallsTable"} <= set(expected_tables)
    assert table_names == {logical_id: f"{PREFIX}-{logical_id}" for logical_id in expected_tables}
    for logical_id, properties in expected_tables.items():
        table = dynamodb.describe_table(TableName=table_names[logical_id])["Table"]
        assert table["KeySchema"] == properties["KeySchema"]
        assert by_name(table["AttributeDefinitions"]) == by_name(properties["AttributeDefinitions"])
        assert table["BillingModeSummary"]["BillingMode"] == properties["BillingMode"]

        created_indexes = {
            index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
            for index in table.get("GlobalSecondaryIndexes", [])
        }
        expected_indexes = {
            index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
            for index in properties.get("GlobalSecondaryIndexes", [])
        }
        assert created_indexes == expected_indexes

        if "StreamSpecification" in properties:
            view_type = properties["StreamSpecification"]["StreamViewType"]
            assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": view_type}
            assert table["LatestStreamArn"]
        else:
            assert not table.get("StreamSpecification", {}).get("StreamEnabled", False)

        ttl = dynamodb.describe_time_to_live(TableName=table_names[logical_id])["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert ttl["AttributeName"] == properties["TimeToLiveSpecification"]["AttributeName"]


def test_given_ledger_table_when_created_then_sweeper_index_is_keyed_by_bucket_and_release_time(
    dynamodb: Any, template: dict[str, Any]
) -> None:
    table_names = create_tables(dynamodb, template, PREFIX)

    table = dynamodb.describe_table(TableName=table_names["LedgerTable"])["Table"]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"reservations-by-expiry", "rollups-by-window"}
    index = indexes["reservations-by-expiry"]
    assert index["KeySchema"] == [
        {"AttributeName": "sweep_bucket", "KeyType": "HASH"},
        {"AttributeName": "release_after", "KeyType": "RANGE"},
    ]
    assert index["Projection"]["ProjectionType"] == "KEYS_ONLY"
    assert by_name(table["AttributeDefinitions"])["release_after"] == "N"


def test_given_existing_tables_when_created_again_then_tables_and_their_items_are_kept(
    dynamodb: Any, template: dict[str, Any]
) -> None:
    first_names = create_tables(dynamodb, template, PREFIX)
    dynamodb.put_item(TableName=first_names["CallsTable"], Item={"request_id": {"S": "req-1"}})

    second_names = create_tables(dynamodb, template, PREFIX)

    assert second_names == first_names
    item = dynamodb.get_item(TableName=first_names["CallsTable"], Key={"request_id": {"S": "req-1"}})
    assert item["Item"] == {"request_id": {"S": "req-1"}}


def test_given_short_form_tags_when_template_loaded_then_long_forms_are_returned(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        """
Conditions:
  HasEmail: !Not [!Equals [!Ref Email, ""]]
Resources:
  Thing:
    Type: AWS::SNS::Topic
    Properties:
      A: !GetAtt Database.Endpoint.Address
      B: !GetAtt [Table, Arn]
      C: !Sub arn:${AWS::Partition}:x
      D: !Sub ["${Name}-x", {Name: !Ref Name}]
      E: !If [HasEmail, !Select [0, !Split [",", !Ref List]], !Ref AWS::NoValue]
      F: !Join ["", [!FindInMap [Map, Key, Value], !ImportValue Shared]]
      G: !Base64 text
      H: !Condition HasEmail
""",
        encoding="utf-8",
    )

    template = load_template(path)

    assert template["Conditions"]["HasEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]}
    assert template["Resources"]["Thing"]["Properties"] == {
        "A": {"Fn::GetAtt": ["Database", "Endpoint.Address"]},
        "B": {"Fn::GetAtt": ["Table", "Arn"]},
        "C": {"Fn::Sub": "arn:${AWS::Partition}:x"},
        "D": {"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Name"}}]},
        "E": {
            "Fn::If": [
                "HasEmail",
                {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "List"}]}]},
                {"Ref": "AWS::NoValue"},
            ]
        },
        "F": {"Fn::Join": ["", [{"Fn::FindInMap": ["Map", "Key", "Value"]}, {"Fn::ImportValue": "Shared"}]]},
        "G": {"Fn::Base64": "text"},
        "H": {"Condition": "HasEmail"},
    }


def test_given_unknown_tag_when_template_loaded_then_it_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Thing: !Bogus value\n", encoding="utf-8")

    with pytest.raises(Exception, match="!Bogus"):
        load_template(path)


def test_given_template_env_var_when_loaded_without_path_then_that_template_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("Resources:\n  Only:\n    Type: AWS::SNS::Topic\n", encoding="utf-8")
    monkeypatch.setenv(TEMPLATE_ENV_VAR, str(path))

    assert list(load_template()["Resources"]) == ["Only"]


def test_given_no_path_and_no_env_var_when_loaded_then_repository_template_is_used(
    monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    monkeypatch.delenv(TEMPLATE_ENV_VAR, raising=False)

    assert load_template() == load_template(repo_root / "template.yaml")


def test_given_intrinsic_in_table_property_when_specs_derived_then_it_is_refused(template: dict[str, Any]) -> None:
    table = template["Resources"]["CallsTable"]
    altered_table = {**table, "Properties": {**table["Properties"], "BillingMode": {"Ref": "Mode"}}}
    altered = {**template, "Resources": {**template["Resources"], "CallsTable": altered_table}}

    with pytest.raises(ValueError, match=r"CallsTable\.BillingMode"):
        table_specs(altered)


def test_given_response_cache_table_then_it_is_on_demand_encrypted_expiring_and_keyed_pk_sk(
    template: dict[str, Any],
) -> None:
    properties = template_tables(template)["ResponseCacheTable"]

    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert by_name(properties["AttributeDefinitions"]) == {"pk": "S", "sk": "S"}
    assert "GlobalSecondaryIndexes" not in properties and "StreamSpecification" not in properties


def test_given_gateway_when_read_then_it_may_get_put_and_query_the_cache_table_only_and_knows_its_name(
    template: dict[str, Any],
) -> None:
    gateway = template["Resources"]["GatewayFunction"]["Properties"]
    statements = [s for policy in gateway["Policies"] for s in policy["Statement"]]
    on_cache = [s for s in statements if "ResponseCacheTable" in json.dumps(s["Resource"])]

    assert gateway["Environment"]["Variables"]["COSTBRAKE_CACHE_TABLE"] == {"Ref": "ResponseCacheTable"}
    assert len(on_cache) == 1
    assert on_cache[0]["Effect"] == "Allow"
    assert sorted(on_cache[0]["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    assert on_cache[0]["Resource"] == {"Fn::GetAtt": ["ResponseCacheTable", "Arn"]}
    others = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    for name in others:
        if name != "GatewayFunction":
            assert "ResponseCacheTable" not in json.dumps(template["Resources"][name]["Properties"].get("Policies", []))
