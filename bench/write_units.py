"""The DynamoDB write units one call costs, from the writes the ledger actually sends (captured on its client).

Item sizes follow DynamoDB's rules (developer guide, "Item sizes and formats"): the UTF-8 length of every
attribute name plus its value — strings by UTF-8 length, numbers about 1 byte per 2 significant digits plus 1,
booleans and nulls 1 byte, lists and maps 3 bytes plus their elements plus 1 byte each. Costs (on-demand,
"Read/write capacity mode"): a transactional write costs 2 WCU per 1 KB of the item (the larger of its old and
new image, rounded up); writing, updating or deleting a global secondary index entry costs 1 WCU per 1 KB of the
projected entry (keys and projected attributes, plus DynamoDB's 100 bytes of index-entry overhead), for items
that carry the index's key attributes — an update that changes no index key or projected attribute writes none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from costbrake.local.template import load_template

KB = 1024
INDEX_ENTRY_OVERHEAD = 100


def value_size(value: Mapping[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = Decimal(str(inner)).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: item}) for item in inner)
    if kind == "L":
        return 3 + sum(value_size(item) + 1 for item in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(item) + 1 for name, item in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    included: tuple[str, ...] = ()

    def entry(self, item: Mapping[str, Any], table_keys: tuple[str, ...]) -> dict[str, Any] | None:
        if not all(key in item for key in self.keys):
            return None  # sparse: the item is not in this index
        if self.projection == "ALL":
            return dict(item)
        names = (*table_keys, *self.keys, *self.included)
        return {name: item[name] for name in names if name in item}


@dataclass(frozen=True)
class Table:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]


def tables_from_template(table_names: Mapping[str, str], template_path: Path | None = None) -> dict[str, Table]:
    """Key schema and indexes of the local tables (logical id -> local name in ``table_names``)."""
    resources = load_template(template_path)["Resources"]
    tables = {}
    for logical_id, name in table_names.items():
        properties = resources[logical_id]["Properties"]
        indexes = tuple(
            Index(
                index["IndexName"],
                tuple(key["AttributeName"] for key in index["KeySchema"]),
                index["Projection"]["ProjectionType"],
                tuple(index["Projection"].get("NonKeyAttributes", ())),
            )
            for index in properties.get("GlobalSecondaryIndexes", [])
        )
        tables[name] = Table(tuple(key["AttributeName"] for key in properties["KeySchema"]), indexes)
    return tables


@dataclass
class Line:
    what: str
    item_bytes: int
    wcu: int


@dataclass
class WriteUnits:
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(line.wcu for line in self.lines)


class WriteCapture:
    """Records TransactWriteItems / PutItem / UpdateItem / DeleteItem parameters sent through a botocore client."""

    _OPERATIONS = ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._client: Any = None

    def install(self, client: Any) -> WriteCapture:
        for operation in self._OPERATIONS:
            client.meta.events.register(
                f"before-parameter-build.dynamodb.{operation}", self._remember, unique_id=f"cb-wcu-{operation}"
            )
        self._client = client
        return self

    def uninstall(self) -> None:
        for operation in self._OPERATIONS:
            self._client.meta.events.unregister(
                f"before-parameter-build.dynamodb.{operation}", unique_id=f"cb-wcu-{operation}"
            )

    def _remember(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, params))


def write_units(requests: list[tuple[str, dict[str, Any]]], tables: Mapping[str, Table], dynamodb: Any) -> WriteUnits:
    """WCU of the captured writes. Updated items are read back (``dynamodb``: a client of the same tables)
    for their size after the call; deleted items are sized from an earlier put in ``requests``."""
    result = WriteUnits()
    put_images: dict[tuple[str, str], dict[str, Any]] = {}

    def key_of(table: str, item: Mapping[str, Any]) -> tuple[str, str]:
        return table, repr(sorted((name, repr(item[name])) for name in tables[table].keys))

    def current(table: str, key: Mapping[str, Any]) -> dict[str, Any]:
        found = dynamodb.get_item(TableName=table, Key=dict(key), ConsistentRead=True).get("Item")
        return found or dict(key)

    def add(what: str, table: str, image: Mapping[str, Any], factor: int, index_change: bool) -> None:
        size = item_size(image)
        result.lines.append(Line(what, size, factor * units(size)))
        if not index_change:
            return
        for index in tables[table].indexes:
            entry = index.entry(image, tables[table].keys)
            if entry is not None:
                entry_size = item_size(entry) + INDEX_ENTRY_OVERHEAD
                result.lines.append(Line(f"  index {index.name} entry", entry_size, units(entry_size)))

    for operation, params in requests:
        if operation == "TransactWriteItems":
            actions = [next(iter(entry.items())) for entry in params["TransactItems"]]
            factor = 2
        elif operation == "BatchWriteItem":
            raise ValueError("BatchWriteItem on the hot path: size it here")
        else:
            actions = [({"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}[operation], params)]
            factor = 1
        for action, body in actions:
            table = body["TableName"]
            label = _label(table, body)
            if action == "Put":
                put_images[key_of(table, body["Item"])] = body["Item"]
                add(f"put {label}", table, body["Item"], factor, True)
            elif action == "Update":
                image = current(table, body["Key"])
                names = body.get("ExpressionAttributeNames", {}).values()
                touches_index = any(
                    name in index.keys or index.projection == "ALL" or name in index.included
                    for index in tables[table].indexes
                    for name in names
                )
                add(f"update {label}", table, image, factor, touches_index)
            elif action == "Delete":
                image = put_images.get(key_of(table, body["Key"]), dict(body["Key"]))
                add(f"delete {label}", table, image, factor, True)
            else:  # ConditionCheck
                add(f"condition check {label}", table, current(table, body["Key"]), factor, False)
    return result


def _label(table: str, body: Mapping[str, Any]) -> str:
    key = body.get("Key") or body.get("Item") or {}
    pk = key.get("pk", {}).get("S") or ""
    kind = pk.split("#", 1)[0] if pk else ("call record" if "request_id" in key else "?")
    names = {"ctr": "counter", "res": "reservation"}
    window = key.get("sk", {}).get("S", "")
    label = names.get(kind, kind)
    if kind == "ctr":
        label += f" {pk.split('#', 2)[1] if pk.count('#') >= 1 else ''} {window}".rstrip()
    return label
