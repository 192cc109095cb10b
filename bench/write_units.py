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
    """Records TransactWriteItems / PutItem / UpdateItem / DeleteItem parameters sent through a botocore client,
    with each written item's image before the write (read through ``reader``, a client of the same tables)."""

    _OPERATIONS = ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")

    def __init__(self, reader: Any) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.before: list[list[dict[str, Any] | None]] = []  # per request, per written item
        self._reader = reader
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
        images = []
        for body in _bodies(model.name, params):
            table, item_key = body["TableName"], _key_of(body)
            found = self._reader.get_item(TableName=table, Key=item_key, ConsistentRead=True)
            images.append(found.get("Item"))
        self.before.append(images)


def _key_of(body: Mapping[str, Any]) -> dict[str, Any]:
    if "Key" in body:
        return dict(body["Key"])
    item = body["Item"]
    return {name: item[name] for name in ("pk", "sk", "request_id") if name in item}


def _bodies(operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if operation == "TransactWriteItems":
        return [next(iter(entry.values())) for entry in params["TransactItems"]]
    return [params] if operation != "BatchWriteItem" else []


def write_units(capture: WriteCapture, tables: Mapping[str, Table], dynamodb: Any) -> WriteUnits:
    """WCU of the captured writes: each item by the larger of its images before and after, and each index entry
    written, changed or removed (an index key that changes costs a delete and a put). A write's after image is
    the next captured write's before image of the same item, or the item as it is now (``dynamodb``: a client
    of the same tables); a cancelled transaction changes nothing, so it costs its items' sizes and no index."""
    result = WriteUnits()

    def add(
        what: str, table: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, factor: int
    ) -> None:
        size = max(item_size(before or {}), item_size(after or {}))
        result.lines.append(Line(what, size, factor * units(size)))
        for index in tables[table].indexes:
            old = index.entry(before, tables[table].keys) if before else None
            new = index.entry(after, tables[table].keys) if after else None
            if old == new:
                continue  # unchanged (or in neither): no index write
            rekeyed = old is not None and new is not None and any(old.get(k) != new.get(k) for k in index.keys)
            for entry, verb in (
                ((old, "delete"), (new, "put")) if rekeyed or old is None or new is None else ((new, "update"),)
            ):
                if entry is not None:
                    entry_size = item_size(entry) + INDEX_ENTRY_OVERHEAD
                    result.lines.append(Line(f"  index {index.name} entry {verb}", entry_size, units(entry_size)))

    written = [
        (number, position, body)
        for number, (operation, params) in enumerate(capture.requests)
        for position, body in enumerate(_bodies(operation, params))
    ]

    def after(number: int, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item after request ``number``: as the next request writing it found it, or as it is now."""
        where = (body["TableName"], _key_of(body))
        for later, position, other in written:
            if later > number and (other["TableName"], _key_of(other)) == where:
                return capture.before[later][position]
        found = dynamodb.get_item(TableName=where[0], Key=where[1], ConsistentRead=True).get("Item")
        return found

    for number, position, body in written:
        operation = capture.requests[number][0]
        if operation == "BatchWriteItem":
            raise ValueError("BatchWriteItem on the hot path: size it here")
        factor = 2 if operation == "TransactWriteItems" else 1
        action = (
            next(iter(capture.requests[number][1]["TransactItems"][position]))
            if operation == "TransactWriteItems"
            else {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}[operation]
        )
        table, before = body["TableName"], capture.before[number][position]
        label = _label(table, body)
        if action == "ConditionCheck":  # nothing written, but it costs a write of the item's size
            add(f"condition check {label}", table, before, before, factor)
        else:
            add(f"{action.lower()} {label}", table, before, after(number, body), factor)
    return result


def _label(table: str, body: Mapping[str, Any]) -> str:
    key = body.get("Key") or body.get("Item") or {}
    pk = key.get("pk", {}).get("S") or ""
    kind = pk.split("#", 1)[0] if pk else ("call record" if "request_id" in key else "?")
    names = {"ctr": "counter", "res": "reservation"}
    if pk.startswith("ctr#user#") and key.get("sk", {}).get("S") == "w":
        return "user item (windows, rate, reservation)"
    window = key.get("sk", {}).get("S", "")
    label = names.get(kind, kind)
    if kind == "ctr":
        label += f" {pk.split('#', 2)[1] if pk.count('#') >= 1 else ''} {window}".rstrip()
    return label
