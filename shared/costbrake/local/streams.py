"""The local stand-in for Lambda's DynamoDB-stream event source mappings: read the streams, invoke the consumers.

What is emulated (AWS Lambda developer guide: "Configuring partial batch response with DynamoDB and Lambda" and
"Retain discarded batch records for a DynamoDB event source"):

- each shard's records reach the handler in order, in batches of at most BatchSize, as the DynamoDB-stream event
  Lambda sends; a batch that succeeds is checkpointed;
- with ReportBatchItemFailures, ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}`` checkpoints the
  records before the lowest failed sequence number and retries from it; an empty or unknown identifier fails the
  whole batch; without ReportBatchItemFailures the response is ignored;
- an exception fails the whole batch; with BisectBatchOnFunctionError a failed batch is split in two first
  (splitting uses no retry quota);
- after MaximumRetryAttempts retries (-1: retry forever) the batch is discarded: its invocation record, the
  document an SQS/SNS on-failure destination receives, goes to ``on_failure`` and the shard moves on.

Locally a retry is the rest of the failed batch (Lambda may top it up with newer records) and it waits for the
next poll, which plays Lambda's retry back-off.
"""

from __future__ import annotations

import base64
import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from costbrake.clock import Clock, SystemClock
from costbrake.local.lambda_gateway import LambdaContext

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]
OnFailure = Callable[[dict[str, Any]], None]

_FUNCTION_TYPE = "AWS::Serverless::Function"
_REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
_RECORDS_PER_READ = 1000  # GetRecords' maximum
_CONTEXT_TIMEOUT_SECONDS = 900.0  # Lambda's maximum; locally nothing enforces it


@dataclass(frozen=True)
class StreamSubscription:
    """One event-source mapping from a table's stream to a Lambda handler, as the template would declare it."""

    table_name: str
    handler: Handler
    batch_size: int = 100
    maximum_retry_attempts: int = 3  # -1: until the record expires, i.e. forever here
    bisect_on_error: bool = True
    on_failure: OnFailure | None = None  # receives the discarded batch's invocation record (the local DLQ)
    report_batch_item_failures: bool = True
    function_name: str = "stream-consumer"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"batch_size must be 1..10000, not {self.batch_size}")
        if self.maximum_retry_attempts < -1:
            raise ValueError(f"maximum_retry_attempts must be -1 or more, not {self.maximum_retry_attempts}")


def streams_client(endpoint_url: str | None = None, region_name: str = "us-east-1") -> Any:
    """A DynamoDB Streams client that moto understands.

    Recent botocore sends calls that carry a stream ARN to "<account>.streams-ddb.<region>.amazonaws.com", a
    host moto's in-process mock does not route (it answers 404 "Not yet implemented"); the regional endpoint
    works both in-process and against moto's server.
    """
    return boto3.client(
        "dynamodbstreams",
        endpoint_url=endpoint_url,
        region_name=region_name,
        config=Config(account_id_endpoint_mode="disabled"),
    )


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None  # None once a closed shard has been read to its end
    unprocessed: list[dict[str, Any]] = field(default_factory=list)  # read, not checkpointed, in stream order
    # Batches to (re)deliver before new ones are cut: bisected halves, the rest of a partly failed batch.
    # Each is a run of `unprocessed` from its start, in order.
    planned: list[list[dict[str, Any]]] = field(default_factory=list)
    failed_attempts: int = 0  # failures of the head batch that count against MaximumRetryAttempts
    invocations: int = 0  # since a batch last completed or was discarded, for the on-failure record


@dataclass
class _Outcome:
    failed_from: int | None  # index of the first record to retry; None: the batch succeeded
    function_error: bool = False  # the handler raised (as opposed to reporting failed items)


class _Mapping:
    """One subscription's position in its table's stream."""

    def __init__(self, subscription: StreamSubscription, streams: Any, dynamodb: Any, clock: Clock) -> None:
        self.subscription = subscription
        self._streams = streams
        self._dynamodb = dynamodb
        self._clock = clock
        self._region = str(streams.meta.region_name)
        self._stream_arn: str | None = None
        self.shards: dict[str, _Shard] = {}

    def poll(self) -> int:
        self._discover_shards()
        return sum(self._deliver(shard) for shard in self.shards.values())

    # -- reading -------------------------------------------------------------------------------------------

    def _arn(self) -> str:
        if self._stream_arn is None:
            table = self._dynamodb.describe_table(TableName=self.subscription.table_name)["Table"]
            if "LatestStreamArn" not in table:
                raise ValueError(f"table {self.subscription.table_name} has no stream")
            self._stream_arn = str(table["LatestStreamArn"])
        return self._stream_arn

    def _discover_shards(self) -> None:
        request: dict[str, Any] = {"StreamArn": self._arn()}
        while True:
            description = self._streams.describe_stream(**request)["StreamDescription"]
            for shard in description.get("Shards", []):
                shard_id = shard["ShardId"]
                if shard_id not in self.shards:
                    iterator = self._streams.get_shard_iterator(
                        StreamArn=self._arn(), ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                    )["ShardIterator"]
                    self.shards[shard_id] = _Shard(shard_id, iterator)
            if not description.get("LastEvaluatedShardId"):
                return
            request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def _read(self, shard: _Shard) -> None:
        """Read until a full batch is waiting or the shard has nothing new."""
        while shard.iterator is not None and len(shard.unprocessed) < self.subscription.batch_size:
            page = self._streams.get_records(ShardIterator=shard.iterator, Limit=_RECORDS_PER_READ)
            shard.iterator = page.get("NextShardIterator")
            records = page.get("Records", [])
            shard.unprocessed.extend(lambda_record(record, self._arn(), self._region) for record in records)
            if not records:
                return

    # -- delivering ----------------------------------------------------------------------------------------

    def _deliver(self, shard: _Shard) -> int:
        """Invoke the handler until the shard is caught up or a batch failed (it is retried at the next poll)."""
        subscription = self.subscription
        delivered = 0
        while True:
            if not shard.planned:
                self._read(shard)
                if not shard.unprocessed:
                    return delivered
                shard.planned.append(shard.unprocessed[: subscription.batch_size])
            batch = shard.planned[0]
            outcome, request_id = self._invoke(batch)
            shard.invocations += 1
            delivered += len(batch)
            if outcome.failed_from is None:
                self._move_past_head_batch(shard)
                continue

            if outcome.failed_from > 0:
                # Records before the lowest failure are checkpointed; the retry count restarts at the new position.
                del shard.unprocessed[: outcome.failed_from]
                shard.failed_attempts = 0
            remainder = batch[outcome.failed_from :]
            if outcome.function_error and subscription.bisect_on_error and len(remainder) > 1:
                middle = len(remainder) // 2
                shard.planned[0:1] = [remainder[:middle], remainder[middle:]]
                return delivered
            shard.planned[0] = remainder
            shard.failed_attempts += 1
            retries_allowed = subscription.maximum_retry_attempts
            if retries_allowed == -1 or shard.failed_attempts <= retries_allowed:
                return delivered
            self._discard(shard, request_id, outcome)

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[_Outcome, str]:
        subscription = self.subscription
        request_id = str(uuid.uuid4())
        context = LambdaContext(subscription.function_name, request_id, _CONTEXT_TIMEOUT_SECONDS, time.monotonic())
        try:
            # A fresh copy per invocation, as Lambda sends fresh JSON: a handler may change what it receives.
            response = subscription.handler({"Records": copy.deepcopy(batch)}, context)
        except Exception:
            logger.warning("%s failed on a batch of %d records", subscription.function_name, len(batch), exc_info=True)
            return _Outcome(failed_from=0, function_error=True), request_id
        if not subscription.report_batch_item_failures:
            return _Outcome(failed_from=None), request_id
        failed_from = _first_failed_index(batch, response)
        if failed_from is not None:
            logger.warning(
                "%s reported failures in a batch of %d records; retrying from record %d",
                subscription.function_name,
                len(batch),
                failed_from,
            )
        return _Outcome(failed_from=failed_from), request_id

    @staticmethod
    def _move_past_head_batch(shard: _Shard) -> None:
        del shard.unprocessed[: len(shard.planned.pop(0))]
        shard.failed_attempts = 0
        shard.invocations = 0

    def _discard(self, shard: _Shard, request_id: str, outcome: _Outcome) -> None:
        batch = shard.planned[0]
        record = self._invocation_record(shard, batch, request_id, outcome)
        logger.warning(
            "%s: retries exhausted, %d records discarded: %s",
            self.subscription.function_name,
            len(batch),
            record["DDBStreamBatchInfo"],
        )
        self._move_past_head_batch(shard)
        if self.subscription.on_failure is not None:
            try:
                self.subscription.on_failure(record)
            except Exception:
                logger.exception("the on-failure destination of %s failed", self.subscription.function_name)

    def _invocation_record(
        self, shard: _Shard, batch: list[dict[str, Any]], request_id: str, outcome: _Outcome
    ) -> dict[str, Any]:
        """What Lambda sends an SQS or SNS on-failure destination: where the batch is, not the records."""
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if outcome.function_error:
            response_context["functionError"] = "Unhandled"
        function_arn = f"arn:aws:lambda:{self._region}:000000000000:function:{self.subscription.function_name}"
        return {
            "requestContext": {
                "requestId": request_id,
                "functionArn": function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": shard.invocations,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": _iso(self._clock.now(), milliseconds=True),
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(_from_epoch(first["ApproximateCreationDateTime"])),
                "approximateArrivalOfLastRecord": _iso(_from_epoch(last["ApproximateCreationDateTime"])),
                "batchSize": len(batch),
                "streamArn": self._arn(),
            },
        }


class StreamPoller:
    """Polls the subscribed tables' streams and invokes their handlers, like Lambda's event source mappings."""

    def __init__(
        self,
        dynamodb_streams_client: Any,
        dynamodb_client: Any,
        subscriptions: list[StreamSubscription],
        poll_interval: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        self._poll_interval = poll_interval
        clock = clock or SystemClock()
        self._mappings = [_Mapping(sub, dynamodb_streams_client, dynamodb_client, clock) for sub in subscriptions]
        self._lock = threading.Lock()  # poll_once from the background thread and from drain() never interleave
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """Read every subscribed stream's new records and deliver them; returns the records handed to handlers
        (retries included)."""
        with self._lock:
            return sum(mapping.poll() for mapping in self._mappings)

    def drain(self, timeout: float = 10.0) -> None:
        """Poll until a poll finds nothing to deliver; TimeoutError if records are still failing at `timeout`."""
        deadline = time.monotonic() + timeout
        while self.poll_once():
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream records still being delivered after {timeout} s")

    def start(self) -> StreamPoller:
        if self._thread is not None:
            raise RuntimeError("the poller is already running")
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopped.wait(self._poll_interval):
            try:
                self.poll_once()
            except Exception:
                # moto going away at shutdown, a table not created yet: the next poll tries again.
                logger.exception("polling the streams failed")


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A boto3 `get_records` record as Lambda delivers it: JSON types, event version 1.1, the stream ARN."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())  # epoch seconds, rounded down
    for image in ("Keys", "NewImage", "OldImage"):
        if image in change:
            change[image] = {name: _json_attribute(value) for name, value in change[image].items()}
    lambda_event: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }
    identity = record.get("userIdentity")
    if identity:  # TTL deletions
        lambda_event["userIdentity"] = {"type": identity["Type"], "principalId": identity["PrincipalId"]}
    return lambda_event


def subscriptions_from_template(
    template: Mapping[str, Any],
    table_names: dict[str, str],
    handlers: Mapping[str, Handler],
    *,
    on_failure: OnFailure | None = None,
) -> list[StreamSubscription]:
    """The DynamoDB event sources of the template's functions that have a handler in `handlers` (by logical id).

    `table_names` maps table logical ids to the local tables; `on_failure` plays the destination of the event
    sources that declare `DestinationConfig.OnFailure` (the others drop exhausted records, as Lambda does).
    Settings left out of the template take Lambda's defaults.
    """
    subscriptions: list[StreamSubscription] = []
    for function_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != _FUNCTION_TYPE or function_id not in handlers:
            continue
        for event_id, event in (resource.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") != "DynamoDB":
                continue
            where = f"{function_id}.Events.{event_id}.Properties"
            properties = _EventProperties(event.get("Properties", {}), where)
            if properties.get("Enabled", True) is False:
                continue
            table_id = _stream_table(properties.raw.get("Stream"), f"{where}.Stream")
            if table_id not in table_names:
                raise ValueError(f"{where}.Stream names {table_id}, which is not a table of the local stack")
            subscriptions.append(
                StreamSubscription(
                    table_name=table_names[table_id],
                    handler=handlers[function_id],
                    batch_size=int(properties.get("BatchSize", 100)),
                    maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
                    bisect_on_error=bool(properties.get("BisectBatchOnFunctionError", False)),
                    report_batch_item_failures=_REPORT_BATCH_ITEM_FAILURES
                    in properties.get("FunctionResponseTypes", []),
                    on_failure=on_failure if properties.raw.get("DestinationConfig", {}).get("OnFailure") else None,
                    function_name=function_id,
                )
            )
    return subscriptions


@dataclass(frozen=True)
class _EventProperties:
    raw: Mapping[str, Any]
    where: str

    def get(self, name: str, default: Any) -> Any:
        value = self.raw.get(name, default)
        if isinstance(value, Mapping):
            raise ValueError(f"{self.where}.{name} uses an intrinsic function; the local poller needs a literal value")
        return value


def _stream_table(stream: Any, where: str) -> str:
    """`!GetAtt Table.StreamArn` (either form) -> "Table"."""
    target = stream.get("Fn::GetAtt") if isinstance(stream, Mapping) else None
    if isinstance(target, str):
        target = target.split(".", 1)
    if not (isinstance(target, list) and len(target) == 2 and target[1] == "StreamArn"):
        raise ValueError(f"{where} must be !GetAtt <Table>.StreamArn for the local poller, not {stream!r}")
    return str(target[0])


def _first_failed_index(batch: list[dict[str, Any]], response: Any) -> int | None:
    """Index of the lowest reported failure; 0 (the whole batch) for a malformed report; None for success."""
    failures = response.get("batchItemFailures") if isinstance(response, Mapping) else None
    if not failures:
        return None
    index_of = {record["dynamodb"]["SequenceNumber"]: index for index, record in enumerate(batch)}
    indexes = [
        index_of.get(failure.get("itemIdentifier")) if isinstance(failure, Mapping) else None for failure in failures
    ]
    if any(index is None for index in indexes):
        return 0
    return min(index for index in indexes if index is not None)


def _json_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB attribute value as JSON carries it: boto3 decodes binaries to bytes, Lambda sends base64."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {kind: base64.b64encode(inner).decode()}
    if kind == "BS":
        return {kind: [base64.b64encode(item).decode() for item in inner]}
    if kind == "M":
        return {kind: {name: _json_attribute(item) for name, item in inner.items()}}
    if kind == "L":
        return {kind: [_json_attribute(item) for item in inner]}
    return {kind: inner}


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _iso(moment: datetime, *, milliseconds: bool = False) -> str:
    timespec = "milliseconds" if milliseconds else "seconds"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
