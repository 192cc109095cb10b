"""The aggregator: adds each call record on the calls table's stream to its hourly and daily rollups, once.

Powertools' BatchProcessor runs ``parse_stream_record`` on each record, so a record that cannot be parsed fails
alone and is reported by its sequence number. ``RollupBatchProcessor`` then writes the parsed calls coalesced
(one update per rollup key per transaction); the records of a transaction that fails are reported too. Lambda
retries from the lowest reported sequence number, so records after it come back: their markers make that a no-op.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from costbrake.clock import Clock
from costbrake.dal.rollups import MAX_TRANSACTION_ITEMS, RollupStore
from costbrake.errors import LedgerUnavailable
from costbrake.pipeline.rollups import MalformedCallRecord, StreamCall, distinct_calls, parse_call, plan_transactions

logger = Logger(child=True)


def parse_stream_record(record: DynamoDBRecord) -> StreamCall | None:
    """The call an INSERT carries; None for MODIFY and REMOVE (TTL expiries): a call counts once, when written."""
    if record.event_name is not DynamoDBRecordEventName.INSERT:
        return None
    stream_record = record.dynamodb
    if stream_record is None or not stream_record.get("NewImage"):
        raise MalformedCallRecord("INSERT without a NewImage (the stream must use NEW_IMAGE)")
    return parse_call(stream_record.new_image)


class RollupBatchProcessor(BatchProcessor):
    """A DynamoDB Streams BatchProcessor that writes the batch's rollups after every record has been parsed."""

    def __init__(self, store: RollupStore, clock: Clock) -> None:
        super().__init__(event_type=EventType.DynamoDBStreams)
        self._store = store
        self._clock = clock

    def process(self) -> list[tuple[Any, ...]]:
        results = super().process()
        raw_by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
        calls: list[StreamCall] = []
        for status, result, raw in results:
            if status == "success" and isinstance(result, StreamCall):
                raw_by_request[result.request_id].append(raw)
                calls.append(result)

        now = self._clock.now()
        applied = duplicates = 0
        unwritten: dict[int, LedgerUnavailable] = {}  # id of a raw record → why its transaction failed
        for group in plan_transactions(distinct_calls(calls), MAX_TRANSACTION_ITEMS):
            try:
                outcome = self._store.apply(group, now)
            except LedgerUnavailable as error:
                logger.warning("rollup transaction failed", extra={"calls": len(group), "error": str(error)})
                unwritten.update((id(raw), error) for call in group for raw in raw_by_request[call.request_id])
                continue
            applied += outcome.applied
            duplicates += outcome.duplicates

        logger.info(
            "rollups written",
            extra={
                "records": len(results),
                "calls": len(raw_by_request),
                "applied": applied,
                "duplicates": duplicates,
                "unwritten": len(unwritten),
                "unparsed": len(self.fail_messages),
            },
        )
        return [self._report_unwritten(entry, unwritten) for entry in results] if unwritten else results

    def _report_unwritten(self, entry: tuple[Any, ...], unwritten: dict[int, LedgerUnavailable]) -> tuple[Any, ...]:
        """Turn a parsed record whose transaction failed into a reported failure (a retry will apply it)."""
        status, _, raw = entry
        error = unwritten.get(id(raw))
        if status != "success" or error is None:
            return entry
        self.success_messages = [message for message in self.success_messages if message is not raw]
        return self.failure_handler(DynamoDBRecord(raw), (type(error), error, error.__traceback__))


def stream_handler(processor: RollupBatchProcessor) -> Callable[[dict[str, Any], Any], PartialItemFailureResponse]:
    """The aggregator's Lambda handler around ``processor`` (the deployed function and the local stack use it)."""

    def handle(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=parse_stream_record, processor=processor, context=context
        )

    return handle
