"""Fixes to moto for the local stack: a faster TransactWriteItems, and DynamoDB's number arithmetic.

1. moto backs up every table a transaction touches with ``copy.deepcopy`` — once per item — before applying it,
so each transaction costs time proportional to the whole table and the emulator slows down as the local
tables grow. This version checks every condition first and applies nothing if one fails, and for the rare
failure while applying (an invalid update expression) it restores just the touched items.

2. moto's ADD keeps Python's Decimal formatting: 0.0075 + -0.0075 is stored as "0E-7", which its next ADD
cannot parse. DynamoDB stores numbers normalised ("0"); so does this.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DDBType, DynamoType

_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def _key(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in _OPERATIONS:
            raise MockValidationException("Unsupported transaction operation")
        key = _key(self, op_type, op)
        ident = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if ident in seen:
            raise MultipleTransactionsException()
        seen.add(ident)
        planned.append((op_type, op, key))
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current):
            old_item = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
                old_item = current.to_json()["Attributes"]
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old_item))
        else:
            errors.append((None, None, None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # Wire-format snapshots for a rollback: copying plain dicts is much cheaper than moto's item objects.
    originals = [(op["TableName"], key, _snapshot(self.get_item(op["TableName"], key))) for _, op, key in planned]
    try:
        for op_type, op, key in planned:
            names, values = op.get("ExpressionAttributeNames") or {}, op.get("ExpressionAttributeValues") or {}
            if op_type == "Put":
                self.put_item(
                    op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key)
            elif op_type == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception:
        for table_name, key, original in originals:
            if original is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, original)
        raise


def _snapshot(item: Any) -> dict[str, Any] | None:
    return None if item is None else copy.deepcopy(item.to_json()["Attributes"])


def _number(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")


def _add(self: DynamoType, other: DynamoType) -> DynamoType:
    if self.type != other.type or not self.is_number():
        return _ORIGINAL_ADD(self, other)
    return DynamoType({DDBType.NUMBER: _number(Decimal(self.value) + Decimal(other.value))})


def _sub(self: DynamoType, other: DynamoType) -> DynamoType:
    if self.type != other.type or not self.is_number():
        return _ORIGINAL_SUB(self, other)
    return DynamoType({DDBType.NUMBER: _number(Decimal(self.value) - Decimal(other.value))})


_ORIGINAL_ADD = DynamoType.__add__
_ORIGINAL_SUB = DynamoType.__sub__


def install() -> Callable[[], None]:
    """Apply the fixes to every moto DynamoDB backend of the process; returns what undoes them.

    moto's server process keeps them for its lifetime; tests use ``patched()``, so none depends on another's.
    """
    saved = (DynamoDBBackend.transact_write_items, DynamoType.__add__, DynamoType.__sub__)
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoType.__add__ = _add  # type: ignore[method-assign]
    DynamoType.__sub__ = _sub  # type: ignore[method-assign]

    def undo() -> None:
        DynamoDBBackend.transact_write_items, DynamoType.__add__, DynamoType.__sub__ = saved  # type: ignore[method-assign]

    return undo


@contextmanager
def scoped(apply: Callable[[], Callable[[], None]]) -> Iterator[None]:
    """Patches applied by ``apply`` (which returns their undo) within the block only."""
    undo = apply()
    try:
        yield
    finally:
        undo()


def patched() -> AbstractContextManager[None]:
    """The fixes applied within the block only."""
    return scoped(install)
