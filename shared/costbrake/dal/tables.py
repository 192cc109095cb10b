"""One deployment's tables: a botocore client and the table names, carried by every store instance.

PynamoDB models are only the schema and (de)serialisation here; requests go through ``Tables.client``, so two
deployments in one process (tests, the replay beside a local stack) never share a binding.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action, Update
from pynamodb.models import Model

from costbrake.config import Settings
from costbrake.errors import LedgerUnavailable

M = TypeVar("M", bound=Model)
Raw = dict[str, Any]  # an item as DynamoDB's wire format has it


@contextmanager
def unavailable(message: str, error: type[Exception] = LedgerUnavailable) -> Iterator[None]:
    """The one mapping of a failed DynamoDB request (no answer, refused, throttled) to costbrake's error."""
    try:
        yield
    except (BotoCoreError, ClientError, PynamoDBException) as cause:
        raise error(message) from cause


def error_code(error: BaseException) -> str | None:
    """DynamoDB's error code; None when no response came back at all."""
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def new_client(settings: Settings) -> Any:
    config = Config(
        parameter_validation=False,  # the requests are built here; validation costs CPU on every call
        connect_timeout=2,
        read_timeout=5,
        retries={"total_max_attempts": 3, "mode": "standard"},  # throttling; transactions retry in dal.retry
        max_pool_connections=32,  # the gateway's worker threads share the client (botocore's default: 10)
    )
    session = botocore.session.get_session()
    return session.create_client(
        "dynamodb", settings.aws_region, endpoint_url=settings.dynamodb_endpoint_url, config=config
    )


def key(pk: str, sk: str) -> Raw:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def expressions(
    *,
    key_condition: Condition | None = None,
    condition: Condition | None = None,
    actions: Sequence[Action] = (),
) -> dict[str, Any]:
    """Request arguments of PynamoDB conditions and update actions, with their names and values."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    args: dict[str, Any] = {}
    if key_condition is not None:
        args["KeyConditionExpression"] = key_condition.serialize(names, values)
    if condition is not None:
        args["ConditionExpression"] = condition.serialize(names, values)
    if actions:
        args["UpdateExpression"] = Update(*actions).serialize(names, values)
    if names:
        args["ExpressionAttributeNames"] = {placeholder: name for name, placeholder in names.items()}
    if values:
        args["ExpressionAttributeValues"] = values
    return args


class Tables:
    """One deployment's tables (names) and the one botocore client every store of it sends through."""

    def __init__(self, make_client: Callable[[], Any], ledger: str, calls: str, cache: str | None = None) -> None:
        self.ledger, self.calls, self.cache = ledger, calls, cache
        self._make_client = make_client
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, settings: Settings) -> Tables:
        return cls(lambda: new_client(settings), settings.ledger_table, settings.calls_table, settings.cache_table)

    @property
    def client(self) -> Any:
        # Made on first use, as PynamoDB made its client: a Lambda's init builds the app without it (~70 ms).
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def get(self, table: str, model: type[M], item_key: Raw, consistent: bool = False) -> M | None:
        found = self.client.get_item(TableName=table, Key=item_key, ConsistentRead=consistent).get("Item")
        return model.from_raw_data(found) if found else None

    def put(self, table: str, item: Model, condition: Condition | None = None) -> None:
        self.client.put_item(TableName=table, Item=item.serialize(), **expressions(condition=condition))

    def update(self, table: str, item_key: Raw, actions: Sequence[Action], condition: Condition | None = None) -> None:
        self.client.update_item(TableName=table, Key=item_key, **expressions(actions=actions, condition=condition))

    def delete(self, table: str, item_key: Raw) -> None:
        self.client.delete_item(TableName=table, Key=item_key)

    def query(
        self,
        table: str,
        model: type[M],
        key_condition: Condition,
        *,
        index: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        consistent: bool = False,
    ) -> Iterator[M]:
        """Every item (up to ``limit``), page by page."""
        args: dict[str, Any] = {"TableName": table, **expressions(key_condition=key_condition)}
        if index:
            args["IndexName"] = index
        elif consistent:
            args["ConsistentRead"] = True
        if page_size or limit:
            args["Limit"] = page_size or limit
        yield from self._pages("query", args, model, limit)

    def scan(self, table: str, model: type[M], condition: Condition | None = None) -> Iterator[M]:
        args: dict[str, Any] = {"TableName": table}
        if condition is not None:
            found = expressions(condition=condition)
            args["FilterExpression"] = found.pop("ConditionExpression")
            args.update(found)
        yield from self._pages("scan", args, model, None)

    def _pages(self, operation: str, args: dict[str, Any], model: type[M], limit: int | None) -> Iterator[M]:
        send = getattr(self.client, operation)
        returned = 0
        while True:
            page = send(**args)
            for raw in page.get("Items", []):
                if limit is not None and returned >= limit:
                    return
                returned += 1
                yield model.from_raw_data(raw)
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            args["ExclusiveStartKey"] = last

    def batch_get(self, table: str, keys: Sequence[Raw], consistent: bool = False) -> list[Raw]:
        """The items of ``keys`` that exist (any order), 100 keys a request, unprocessed keys asked again."""
        unique = list({tuple(sorted((name, value["S"]) for name, value in k.items())): k for k in keys}.values())
        found: list[Raw] = []
        while unique:
            batch, unique = unique[:100], unique[100:]
            request = {table: {"Keys": batch, "ConsistentRead": consistent}}
            response = self.client.batch_get_item(RequestItems=request)
            found += response.get("Responses", {}).get(table, [])
            unique += response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        return found

    def transact(self, items: Sequence[Mapping[str, Any]], token: str | None = None) -> None:
        args: dict[str, Any] = {"TransactItems": list(items)}
        if token is not None:
            args["ClientRequestToken"] = token
        self.client.transact_write_items(**args)


def put_entry(table: str, item: Model, condition: Condition | None = None) -> dict[str, Any]:
    """A TransactItems ``Put`` of a model instance."""
    return {"Put": {"TableName": table, "Item": item.serialize(), **expressions(condition=condition)}}


def update_entry(
    table: str, item_key: Raw, actions: Sequence[Action], condition: Condition | None = None
) -> dict[str, Any]:
    return {"Update": {"TableName": table, "Key": item_key, **expressions(actions=actions, condition=condition)}}


def delete_entry(table: str, item_key: Raw, condition: Condition | None = None) -> dict[str, Any]:
    return {"Delete": {"TableName": table, "Key": item_key, **expressions(condition=condition)}}


def cancellation_codes(error: ClientError) -> list[str | None]:
    """Per transaction item, why it was cancelled (None: it was not the cause)."""
    reasons = error.response.get("CancellationReasons") or []
    return [None if reason.get("Code") in (None, "None") else reason["Code"] for reason in reasons]


def condition_failed(error: ClientError) -> bool:
    """A write refused by its condition (a single item's, or one item's of a transaction)."""
    code = error_code(error)
    return code == "ConditionalCheckFailedException" or (
        code == "TransactionCanceledException" and "ConditionalCheckFailed" in cancellation_codes(error)
    )
