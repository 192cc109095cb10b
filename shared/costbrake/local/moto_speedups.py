"""Speed-ups of moto's DynamoDB for the local stack's server: the same answers, less work per request.

1. A fast path through UpdateItem for the plain updates the ledger sends (``SET #a = :v``,
``SET #a = if_not_exists(#a, :v)``, ``ADD #b :n``, ``REMOVE #c``).

moto parses every update expression into an AST, validates it with a dozen tree walks and deep-copies the item
before executing it: about a millisecond per item, and a warm gateway call updates five or six counters per
transaction, twice. That made moto's server the local stack's bottleneck (measured: ~8 ms of CPU per
TransactWriteItems). An update of only top-level attributes set to a value (or kept if present), incremented by
a number or removed is applied here directly, with the same results (numbers added exactly, as ``moto_fixes``
stores them); anything else (paths, other functions, DELETE, a condition, sets) goes through moto unchanged.

2. Expressions lexed and parsed once per text: TransactWriteItems' request validation parses every update
expression (only to list its attribute names) and every condition is lexed twice per request. The lexer's
tokens (immutable tuples) and the validation's parse tree (only read there) are cached by expression text.

3. DynamoDB Streams' GetRecords answered with ``json.dumps``: moto's generic response serializer walks every
attribute of every stream image against the service model, which was about half of its server's CPU under the
local pipeline (one call record per call, polled twice a second). The records are already in the wire format;
``ApproximateCreationDateTime`` goes out as epoch seconds, as DynamoDB Streams (and moto) send it.
"""

from __future__ import annotations

import copy
import json
import re
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import moto.dynamodb.responses as dynamodb_responses
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from costbrake.local.moto_fixes import scoped

_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b", re.IGNORECASE)
_SET = re.compile(r"^\s*(#\w+)\s*=\s*(:\w+)\s*$")
_SET_IF_ABSENT = re.compile(r"^\s*(#\w+)\s*=\s*if_not_exists\(\s*(#\w+)\s*,\s*(:\w+)\s*\)\s*$")
_ADD = re.compile(r"^\s*(#\w+)\s+(:\w+)\s*$")
_REMOVE = re.compile(r"^\s*(#\w+)\s*$")
_ASSIGNMENT = re.compile(r"(?:[^,(]|\([^)]*\))+")  # a clause's parts: commas inside a function's () do not split

_ORIGINAL: Callable[..., Any] | None = None
_ITEM_SIZE_LIMIT = 405_000  # moto's (DynamoDB's 400 KB, as measured by moto's authors)


def _plan(expression: str, names: dict[str, str], values: dict[str, Any]) -> list[tuple[str, str, Any]] | None:
    """[(action, attribute, value)] of a plain SET/ADD/REMOVE expression; None for anything else."""
    parts = _CLAUSE.split(expression)
    if parts[0].strip():
        return None
    plan: list[tuple[str, str, Any]] = []
    for keyword, body in zip(parts[1::2], parts[2::2], strict=True):
        action = keyword.upper()
        for assignment in _ASSIGNMENT.findall(body):
            step = _step(action, assignment, names, values)
            if step is None:
                return None
            plan.append(step)
    return plan


def _step(action: str, assignment: str, names: dict[str, str], values: dict[str, Any]) -> tuple[str, str, Any] | None:
    if action == "REMOVE":
        match = _REMOVE.match(assignment)
        return ("REMOVE", names[match[1]], None) if match and match[1] in names else None
    if action == "SET" and (absent := _SET_IF_ABSENT.match(assignment)):
        if absent[1] != absent[2] or absent[1] not in names or absent[3] not in values:
            return None
        return ("SET_IF_ABSENT", names[absent[1]], values[absent[3]])
    pattern = _SET if action == "SET" else _ADD if action == "ADD" else None
    match = pattern.match(assignment) if pattern else None
    if match is None or match[1] not in names or match[2] not in values:
        return None
    value = values[match[2]]
    if action == "ADD" and set(value) != {"N"}:
        return None
    return (action, names[match[1]], value)


def update_item(
    self: DynamoDBBackend,
    table_name: str,
    key: dict[str, dict[str, Any]],
    update_expression: str,
    expression_attribute_names: dict[str, Any],
    expression_attribute_values: dict[str, Any],
    attribute_updates: dict[str, Any] | None = None,
    expected: dict[str, Any] | None = None,
    condition_expression: str | None = None,
    return_values_on_condition_check_failure: str | None = None,
) -> Any:
    assert _ORIGINAL is not None
    arguments = (table_name, key, update_expression, expression_attribute_names, expression_attribute_values)
    plan = None
    if update_expression and not (attribute_updates or expected or condition_expression):
        plan = _plan(update_expression, expression_attribute_names or {}, expression_attribute_values or {})
    table = self.get_table(table_name)
    key_names = {table.hash_key_attr, table.range_key_attr}
    if plan is None or any(attribute in key_names for _, attribute, _ in plan):
        return _ORIGINAL(
            self,
            *arguments,
            attribute_updates,
            expected,
            condition_expression,
            return_values_on_condition_check_failure,
        )
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    item = table.get_item(hash_value, range_value)
    for action, attribute, _value in plan:
        current = item.attrs.get(attribute) if item is not None else None
        if action == "ADD" and current is not None and not current.is_number():
            return _ORIGINAL(self, *arguments, None, None, None, return_values_on_condition_check_failure)
    original = copy.deepcopy(item) if table.stream_shard is not None else None
    if item is None:
        data = {table.hash_key_attr: key[table.hash_key_attr]}
        if table.range_key_attr:
            data[table.range_key_attr] = key[table.range_key_attr]
        table.put_item(data)
        item = table.get_item(hash_value, range_value)
        assert item is not None
    updated = dict(item.attrs)
    for action, attribute, value in plan:
        current = updated.get(attribute)
        if action == "REMOVE":
            updated.pop(attribute, None)
        elif action != "SET_IF_ABSENT" or current is None:
            new = DynamoType(value)
            updated[attribute] = current + new if action == "ADD" and current is not None else new
    # One size check for the whole item (moto's dict checks the whole item again on every attribute set).
    if sum(bytesize(name) + value.size() for name, value in updated.items()) > _ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    dict.clear(item.attrs)
    dict.update(item.attrs, updated)
    if table.stream_shard is not None:
        table.stream_shard.add(original, item)
    return item


_ORIGINAL_LEX = ConditionExpressionParser._lex_condition_expression


@lru_cache(maxsize=512)
def _lexed(expression: str) -> tuple[Any, ...]:
    parser = ConditionExpressionParser(expression, {}, {})
    return tuple(_ORIGINAL_LEX(parser))


def _lex_condition_expression(self: ConditionExpressionParser) -> deque[Any]:
    return deque(_lexed(self.condition_expression))


class _ParsedOnce:
    """``UpdateExpressionParser`` for moto's request validation, which only reads the tree."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser
        self.make = lru_cache(maxsize=512)(parser.make)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


def _get_records(self: DynamoDBStreamsHandler) -> str:
    limit = self._get_param("Limit") or 1000
    result = self.backend.get_records(self._get_param("ShardIterator"), limit)
    return json.dumps(result, default=_epoch_seconds)


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()  # moto's clock is naive UTC
        return int(seconds * 1000) / 1000  # to the millisecond, as moto's serializer sends it
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def install() -> Callable[[], None]:
    """Apply the speed-ups to every moto DynamoDB backend of the process; returns what undoes them (nothing, if
    they were in place already). moto's server process keeps them for its lifetime; tests use ``patched()``."""
    global _ORIGINAL
    if _ORIGINAL is not None:
        return lambda: None
    _ORIGINAL = original = DynamoDBBackend.update_item
    lex = ConditionExpressionParser._lex_condition_expression
    parser = dynamodb_responses.UpdateExpressionParser
    get_records = DynamoDBStreamsHandler.get_records
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    ConditionExpressionParser._lex_condition_expression = _lex_condition_expression  # type: ignore[method-assign]
    dynamodb_responses.UpdateExpressionParser = _ParsedOnce(parser)
    DynamoDBStreamsHandler.get_records = _get_records  # type: ignore[method-assign,assignment]

    def undo() -> None:
        global _ORIGINAL
        DynamoDBBackend.update_item = original  # type: ignore[method-assign]
        ConditionExpressionParser._lex_condition_expression = lex  # type: ignore[method-assign]
        dynamodb_responses.UpdateExpressionParser = parser
        DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign]
        _ORIGINAL = None

    return undo


def patched() -> AbstractContextManager[None]:
    """The speed-ups applied within the block only."""
    return scoped(install)
