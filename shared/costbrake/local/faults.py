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


def _item_keys(params: dict[str, Any]) -> set[str]:
    keys = set()
    for entry in params.get("TransactItems", []):
        for action, body in entry.items():
            key = body.get("Key") if action != "Put" else body.get("Item", {})
            ident = {name: key[name] for name in ("pk", "sk", "request_id") if name in key}
            keys.add(body["TableName"] + json.dumps(ident, sort_keys=True))
    return keys


class ConflictInjector:
    def __init__(self, hold_seconds: float = 0.004, throttle_every: int = 0) -> None:
        self.hold_seconds = hold_seconds
        self.throttle_every = throttle_every
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self.transactions = 0
        self.conflicts = 0
        self.throttles = 0
        self._client: Any = None

    def install(self, client: Any) -> ConflictInjector:
        events = client.meta.events
        events.register(f"before-parameter-build.{_OPERATION}", self._remember_keys, unique_id="cb-conflicts-keys")
        events.register(f"before-call.{_OPERATION}", self._maybe_conflict, unique_id="cb-conflicts-call")
        events.register(f"after-call.{_OPERATION}", self._release, unique_id="cb-conflicts-release")
        self._client = client
        return self

    def uninstall(self) -> None:
        if self._client is None:
            return
        events = self._client.meta.events
        events.unregister(f"before-parameter-build.{_OPERATION}", unique_id="cb-conflicts-keys")
        events.unregister(f"before-call.{_OPERATION}", unique_id="cb-conflicts-call")
        events.unregister(f"after-call.{_OPERATION}", unique_id="cb-conflicts-release")
        self._client = None

    def _remember_keys(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["costbrake_keys"] = _item_keys(params)

    def _maybe_conflict(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        keys: set[str] = context.get("costbrake_keys", set())
        with self._lock:
            self.transactions += 1
            if self.throttle_every and self.transactions % self.throttle_every == 0:
                self.throttles += 1
                return _cancelled(len(keys), "ThrottlingError")
            if any(key in self._held for key in keys):
                self.conflicts += 1
                return _cancelled(len(keys), "TransactionConflict")
            for key in keys:
                self._held[key] = self._held.get(key, 0) + 1
            context["costbrake_held"] = keys
        time.sleep(self.hold_seconds)  # the transaction is "in progress" on its items meanwhile
        return None

    def _release(self, context: dict[str, Any], **_: Any) -> None:
        keys = context.pop("costbrake_held", None)
        if not keys:
            return
        with self._lock:
            for key in keys:
                left = self._held[key] - 1
                if left:
                    self._held[key] = left
                else:
                    del self._held[key]


def _cancelled(items: int, code: str) -> tuple[AWSResponse, dict[str, Any]]:
    reasons = [{"Code": code, "Message": f"injected {code}"}] * max(1, items)
    parsed = {
        "Error": {"Code": "TransactionCanceledException", "Message": f"Transaction cancelled ({code}, injected)"},
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
