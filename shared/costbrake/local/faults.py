"""Contention that moto never shows: TransactionConflict (and throttling) injected into a botocore client.

Real DynamoDB cancels a TransactWriteItems with ``TransactionConflict`` when another transaction is in
progress on one of its items. moto applies requests one at a time and never does, so the concurrency tests
and the benchmark install this on the ledger's client: each transaction holds its items for
``hold_seconds`` (as a real transaction lasts tens of milliseconds) and a transaction touching a held item
is cancelled, exercising the gateway's jittered retry path.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

_OPERATION = "dynamodb.TransactWriteItems"


def _item_keys(params: dict[str, Any]) -> list[str]:
    keys = []
    for entry in params.get("TransactItems", []):
        for action, body in entry.items():
            key = body.get("Key") if action != "Put" else body.get("Item", {})
            ident = {name: key[name] for name in ("pk", "sk", "request_id") if name in key}
            keys.append(body["TableName"] + json.dumps(ident, sort_keys=True))
    return keys


class ConflictInjector:
    """Each transaction is "in progress" on its items for ``hold_seconds`` from when it is sent (as a real
    transaction is on the server); another transaction touching one of those items meanwhile is cancelled.

    The hold is timed from the send, not until the response, because the local moto server queues requests
    behind one lock: that queueing is an artefact of the emulator, not time DynamoDB would hold the items.
    """

    def __init__(self, hold_seconds: float = 0.01, throttle_every: int = 0) -> None:
        self.hold_seconds = hold_seconds
        self.throttle_every = throttle_every
        self._lock = threading.Lock()
        self._held_until: dict[str, float] = {}
        self.transactions = 0
        self.conflicts = 0
        self.throttles = 0
        self._client: Any = None

    def install(self, client: Any) -> ConflictInjector:
        events = client.meta.events
        events.register(f"before-parameter-build.{_OPERATION}", self._remember_keys, unique_id="cb-conflicts-keys")
        events.register(f"before-call.{_OPERATION}", self._maybe_conflict, unique_id="cb-conflicts-call")
        self._client = client
        return self

    def uninstall(self) -> None:
        if self._client is None:
            return
        events = self._client.meta.events
        events.unregister(f"before-parameter-build.{_OPERATION}", unique_id="cb-conflicts-keys")
        events.unregister(f"before-call.{_OPERATION}", unique_id="cb-conflicts-call")
        self._client = None

    def _remember_keys(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["costbrake_keys"] = _item_keys(params)

    def _maybe_conflict(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        keys: list[str] = context.get("costbrake_keys", [])
        now = time.monotonic()
        with self._lock:
            self.transactions += 1
            if self.throttle_every and self.transactions % self.throttle_every == 0:
                self.throttles += 1
                return _cancelled(["ThrottlingError"] * len(keys))
            held = [self._held_until.get(key, 0.0) > now for key in keys]
            if any(held):
                self.conflicts += 1
                # As DynamoDB does: the reason names the items another transaction holds, "None" the others.
                return _cancelled(["TransactionConflict" if busy else "None" for busy in held])
            for key in keys:
                self._held_until[key] = now + self.hold_seconds
        return None


def _cancelled(codes: list[str]) -> tuple[AWSResponse, dict[str, Any]]:
    reasons = [{"Code": code, "Message": f"injected {code}"} if code != "None" else {"Code": "None"} for code in codes]
    parsed = {
        "Error": {"Code": "TransactionCanceledException", "Message": f"Transaction cancelled {codes} (injected)"},
        "CancellationReasons": reasons,
        "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}},
    }
    return AWSResponse("http://injected", 400, HTTPHeaders(), None), parsed


class RequestCounter:
    """Counts DynamoDB API calls made through a botocore client (for the benchmark and tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def install(self, client: Any) -> RequestCounter:
        client.meta.events.register("before-call.dynamodb", self._count, unique_id="cb-request-counter")
        return self

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] = self.calls.get(model.name, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
