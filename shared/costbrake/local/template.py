"""template.yaml as data: the local stack and the tests create their tables from it (one source of truth)."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_ENV_VAR = "COSTBRAKE_TEMPLATE"
# shared/costbrake/local/template.py -> the repository root holds template.yaml.
DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "data" / "template.yaml"  # the repository's, linked

_TABLE_TYPE = "AWS::DynamoDB::Table"
# Short-form tags whose long form is "Fn::<tag>"; !Ref and !Condition keep their names.
_FN_TAGS = frozenset(
    {
        "And",
        "Base64",
        "Cidr",
        "Contains",
        "EachMemberEquals",
        "Equals",
        "FindInMap",
        "GetAZs",
        "GetAtt",
        "If",
        "ImportValue",
        "Join",
        "Length",
        "Not",
        "Or",
        "Select",
        "Split",
        "Sub",
        "ToJsonString",
        "Transform",
        "ValueOf",
    }
)
_PLAIN_TAGS = frozenset({"Ref", "Condition"})


class _CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation's short tags (!Ref, !Sub, ...) as their long dict forms."""


def _construct_short_form(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if tag_suffix in _PLAIN_TAGS:
        key = tag_suffix
    elif tag_suffix in _FN_TAGS:
        key = f"Fn::{tag_suffix}"
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown CloudFormation tag !{tag_suffix}", node.start_mark
        )

    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            # !GetAtt Resource.Attribute; attribute names may contain dots themselves (Endpoint.Address).
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_short_form)


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template: `path`, else $COSTBRAKE_TEMPLATE, else the repository's."""
    template_path = path or Path(os.environ.get(TEMPLATE_ENV_VAR) or DEFAULT_TEMPLATE_PATH)
    document = yaml.load(template_path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise ValueError(f"{template_path} is not a CloudFormation template (no Resources section)")
    return document


def table_specs(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> boto3 `create_table` kwargs (no TableName), plus "TimeToLiveAttribute": name or None."""
    return {
        logical_id: _create_table_kwargs(logical_id, resource.get("Properties", {}))
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == _TABLE_TYPE
    }


def create_tables(dynamodb_client: Any, template: Mapping[str, Any], name_prefix: str) -> dict[str, str]:
    """Create every table of the template as "<prefix>-<logical id>" with its TTL; existing tables are left.

    Returns logical id -> physical table name.
    """
    table_names: dict[str, str] = {}
    for logical_id, spec in table_specs(template).items():
        table_name = f"{name_prefix}-{logical_id}"
        create_kwargs = dict(spec)
        ttl_attribute = create_kwargs.pop("TimeToLiveAttribute")
        # A table created earlier (or concurrently) is left as it is.
        with contextlib.suppress(dynamodb_client.exceptions.ResourceInUseException):
            dynamodb_client.create_table(TableName=table_name, **create_kwargs)
        dynamodb_client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        if ttl_attribute is not None:
            _enable_ttl(dynamodb_client, table_name, ttl_attribute)
        table_names[logical_id] = table_name
    return table_names


def _create_table_kwargs(logical_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    def literal(name: str, default: Any = None) -> Any:
        return _literal(properties.get(name, default), f"{logical_id}.{name}")

    billing_mode = literal("BillingMode", "PROVISIONED")
    kwargs: dict[str, Any] = {
        "AttributeDefinitions": literal("AttributeDefinitions"),
        "KeySchema": literal("KeySchema"),
        "BillingMode": billing_mode,
    }
    if billing_mode == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = literal("ProvisionedThroughput")

    global_indexes = literal("GlobalSecondaryIndexes", [])
    if global_indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            _index_kwargs(index, ("ProvisionedThroughput",)) for index in global_indexes
        ]
    local_indexes = literal("LocalSecondaryIndexes", [])
    if local_indexes:
        kwargs["LocalSecondaryIndexes"] = [_index_kwargs(index, ()) for index in local_indexes]

    stream = literal("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}

    ttl = literal("TimeToLiveSpecification")
    kwargs["TimeToLiveAttribute"] = ttl["AttributeName"] if ttl and ttl.get("Enabled") is True else None
    return kwargs


def _index_kwargs(index: Mapping[str, Any], optional_keys: tuple[str, ...]) -> dict[str, Any]:
    # CloudFormation-only index properties (ContributorInsightsSpecification, ...) are not create_table's.
    wanted = ("IndexName", "KeySchema", "Projection", *optional_keys)
    return {key: copy.deepcopy(index[key]) for key in wanted if key in index}


def _literal(value: Any, where: str) -> Any:
    """A deep copy of `value`, refused if it holds an intrinsic function: locally nothing resolves them."""
    if _holds_intrinsic(value):
        raise ValueError(f"{where} uses an intrinsic function; local tables need literal values")
    return copy.deepcopy(value)


def _holds_intrinsic(value: Any) -> bool:
    if isinstance(value, Mapping):
        if len(value) == 1:
            (key,) = value
            if key == "Ref" or str(key).startswith("Fn::"):
                return True
        return any(_holds_intrinsic(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_intrinsic(item) for item in value)
    return False


def _enable_ttl(dynamodb_client: Any, table_name: str, attribute_name: str) -> None:
    description = dynamodb_client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    already_on = description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    if already_on and description.get("AttributeName") == attribute_name:
        return  # DynamoDB refuses to enable TTL twice
    dynamodb_client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute_name}
    )
