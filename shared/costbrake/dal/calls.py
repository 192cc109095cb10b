"""Call records (the calls table): a call's lookup, a period's calls for reports, and their item conversions."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.dal import models as m
from costbrake.dal.tables import Tables, unavailable
from costbrake.records import CallRecord

CALL_RECORD_RETENTION_SECONDS = 400 * 86_400
UNREACHABLE = "The calls table could not be reached."


class CallStore:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def get_call(self, request_id: str) -> CallRecord | None:
        with unavailable(UNREACHABLE):
            item = self.tables.get(self.tables.calls, m.CallItem, {"request_id": {"S": request_id}})
        return call_record(item) if item else None

    def calls_between(self, start: datetime, end: datetime) -> Iterator[CallRecord]:
        """Every call record with ``start <= timestamp < end``, by day and bucket."""
        first, last = int(start.timestamp()), int(end.timestamp())  # whole seconds; exact bounds below
        day = start.astimezone(UTC).date()
        index = m.CallItem.by_day.Meta.index_name
        with unavailable(UNREACHABLE):
            while day <= end.astimezone(UTC).date():
                for bucket in range(m.CALL_DAY_BUCKETS):
                    condition = (m.CallItem.day_bucket == f"{day.isoformat()}#{bucket}") & m.CallItem.epoch.between(
                        first, last
                    )
                    for item in self.tables.query(self.tables.calls, m.CallItem, condition, index=index):
                        record = call_record(item)
                        if start <= record.timestamp < end:
                            yield record
                day += timedelta(days=1)

    def scan_calls(self) -> list[CallRecord]:
        with unavailable(UNREACHABLE):
            return [call_record(item) for item in self.tables.scan(self.tables.calls, m.CallItem)]


_CALL_FIELDS = [name for name in CallRecord.__dataclass_fields__ if name not in ("request_id", "timestamp")]


def call_day_bucket(day: date, request_id: str) -> str:
    """The calls-by-day key of a call: its UTC day and a bucket that follows from the request id."""
    bucket = zlib.crc32(request_id.encode()) % m.CALL_DAY_BUCKETS
    return f"{day.isoformat()}#{bucket}"


def call_item(record: CallRecord) -> m.CallItem:
    epoch = int(record.timestamp.timestamp())
    return m.CallItem(
        record.request_id,
        timestamp=record.timestamp.isoformat(),
        epoch=epoch,
        day_bucket=call_day_bucket(record.timestamp.astimezone(UTC).date(), record.request_id),
        expires_at=epoch + CALL_RECORD_RETENTION_SECONDS,
        **{name: getattr(record, name) for name in _CALL_FIELDS},
    )


# The wire type of each attribute, from the model: the hot path serialises a record without PynamoDB's per-attribute
# machinery (a fifth of a settle's client CPU), to the same item (a unit test compares the two).
_WIRE_TYPES = {name: attribute.attr_type for name, attribute in m.CallItem.get_attributes().items()}


def call_item_raw(record: CallRecord) -> dict[str, dict[str, Any]]:
    epoch = int(record.timestamp.timestamp())
    values: dict[str, Any] = {name: getattr(record, name) for name in _CALL_FIELDS}
    values |= {
        "request_id": record.request_id,
        "timestamp": record.timestamp.isoformat(),
        "epoch": epoch,
        "day_bucket": call_day_bucket(record.timestamp.astimezone(UTC).date(), record.request_id),
        "expires_at": epoch + CALL_RECORD_RETENTION_SECONDS,
    }
    raw: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if value is None:
            continue
        wire = _WIRE_TYPES[name]
        if wire == "N":
            raw[name] = {"N": format(value, "f") if isinstance(value, Decimal) else str(value)}
        else:
            raw[name] = {wire: value}
    return raw


# Call record fields added after records were first written: an old item reads as their default.
_CALL_DEFAULTS = {"cache_hit": False, "saved_usd": Decimal(0), "truncated_messages": 0, "web_search_requests": 0}


def call_record(item: m.CallItem) -> CallRecord:
    values = {name: getattr(item, name) for name in _CALL_FIELDS}
    for name, default in _CALL_DEFAULTS.items():
        if values[name] is None:
            values[name] = default
    values["truncated_messages"] = int(values["truncated_messages"])
    values["web_search_requests"] = int(values["web_search_requests"])
    return CallRecord(request_id=item.request_id, timestamp=datetime.fromisoformat(item.timestamp), **values)
