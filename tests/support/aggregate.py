"""The aggregator's work on the calls written so far, without a stream: each call record applied once, as the
stream consumer does (rollups, and the settle of the shared counters its reservation charged)."""

from __future__ import annotations

from datetime import datetime

from boto3.dynamodb.types import TypeDeserializer
from costbrake.dal.rollups import MAX_TRANSACTION_ITEMS
from costbrake.pipeline.rollups import parse_call, plan_transactions
from costbrake.wiring import Stores


def aggregate_calls(stores: Stores, now: datetime) -> int:
    """Apply every call record in the calls table (already applied ones are skipped by their markers); the
    number applied now."""
    deserialize = TypeDeserializer().deserialize
    raws = stores.tables.client.scan(TableName=stores.tables.calls).get("Items", [])
    calls = [parse_call({name: deserialize(value) for name, value in raw.items()}) for raw in raws]
    return sum(stores.rollups.apply(group, now).applied for group in plan_transactions(calls, MAX_TRANSACTION_ITEMS))
