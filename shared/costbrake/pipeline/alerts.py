"""Alerts: the JSON message published on the SNS topic, its message attributes, publishing and deduplication.

The message schema is documented in docs/alerts.md and given as ``ALERT_JSON_SCHEMA``; money and ratios are
decimal strings so no subscriber ever sees a float rounding of a cost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from costbrake.formatting import plain_decimal
from costbrake.pipeline.anomaly import DETAIL_PLACES, Anomaly, AnomalyType, Severity, Spender
from costbrake.scopes import Scope, ScopeKind
from costbrake.windows import WindowSpan

SCHEMA_VERSION = "1"
SWITCH_FLIP = "switch_flip"  # announcements of what costbrake did, next to the anomaly types
# Published by the reconciler (costbrake.reconcile): variance against a provider's bill, spend it never saw.
RECONCILIATION_TYPES = ("reconciliation", "unguarded_spend")
USER_BLOCK = "user_block"
ALL_FEATURES = "global"  # the "feature" attribute of alerts not about one feature: they concern all of them
SUBJECT_MAX = 100  # SNS's limit for e-mail subjects
DEDUP_GRACE = timedelta(days=1)  # a dedup key outlives its window by this, for late stream records


@dataclass(frozen=True)
class Alert:
    alert_id: str  # stable for the same type/scope/window: subscribers may use it to drop redelivered copies
    type: str
    severity: Severity
    scope: str
    window: WindowSpan
    generated_at: datetime
    summary: str
    current: Decimal | None = None
    limit: Decimal | None = None
    utilization: Decimal | None = None
    top_users: tuple[Spender, ...] = ()
    top_features: tuple[Spender, ...] = ()
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def feature(self) -> str:
        scope = Scope.parse(self.scope)
        return scope.name if scope.kind is ScopeKind.FEATURE else ALL_FEATURES

    def to_message(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "alert_id": self.alert_id,
            "type": self.type,
            "severity": self.severity.value,
            "scope": self.scope,
            "feature": self.feature,
            "window": self.window.key,
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "current_usd": _decimal(self.current),
            "limit_usd": _decimal(self.limit),
            "utilization": _decimal(self.utilization),
            "top_users": [{"name": s.name, "cost_usd": _decimal(s.cost_usd)} for s in self.top_users],
            "top_features": [{"name": s.name, "cost_usd": _decimal(s.cost_usd)} for s in self.top_features],
            "summary": self.summary,
            "details": dict(self.details),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_message(), ensure_ascii=False, sort_keys=True)

    @property
    def subject(self) -> str:
        text = f"costbrake {self.severity.value}: {self.type} {self.scope} {self.window.key}"
        printable = text.encode("ascii", "replace").decode("ascii")  # SNS subjects are ASCII without line breaks
        return printable[:SUBJECT_MAX]

    @property
    def message_attributes(self) -> dict[str, dict[str, str]]:
        """For subscription filter policies on ``type``, ``severity`` and ``feature``."""
        values = {"type": self.type, "severity": self.severity.value, "feature": self.feature}
        return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


def alert_for(anomaly: Anomaly, generated_at: datetime) -> Alert:
    return Alert(
        alert_id=alert_id(anomaly.dedup_key),
        type=anomaly.type.value,
        severity=anomaly.severity,
        scope=anomaly.scope,
        window=anomaly.window,
        generated_at=generated_at,
        summary=anomaly.summary,
        current=anomaly.current,
        limit=anomaly.limit,
        utilization=anomaly.utilization,
        top_users=anomaly.top_users,
        top_features=anomaly.top_features,
        details=anomaly.details,
    )


def alert_id(dedup_key: str) -> str:
    return hashlib.sha256(dedup_key.encode()).hexdigest()[:24]


def dedup_expiry(window: WindowSpan) -> int:
    """Epoch seconds after which a dedup key may be deleted (TTL)."""
    return int((window.end + DEDUP_GRACE).timestamp())


class Publisher(Protocol):
    def publish(self, alert: Alert) -> None: ...


class SnsClient(Protocol):
    def publish(self, **kwargs: Any) -> Mapping[str, Any]: ...


class SnsPublisher:
    def __init__(self, sns: SnsClient, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def publish(self, alert: Alert) -> None:
        self._sns.publish(
            TopicArn=self._topic_arn,
            Message=alert.to_json(),
            Subject=alert.subject,
            MessageAttributes=alert.message_attributes,
        )


class AlertLog(Protocol):
    def log_alert(self, message: Mapping[str, Any], generated_at: datetime) -> None: ...


class LoggingPublisher:
    """Publishes, then keeps the alert in the ledger's alert log (what reports list as recent anomalies)."""

    def __init__(self, inner: Publisher, log: AlertLog) -> None:
        self._inner = inner
        self._log = log

    def publish(self, alert: Alert) -> None:
        self._inner.publish(alert)
        self._log.log_alert(alert.to_message(), alert.generated_at)


class InMemoryPublisher:
    """Keeps alerts in a list: for tests and the local stack."""

    def __init__(self) -> None:
        self.published: list[Alert] = []

    def publish(self, alert: Alert) -> None:
        self.published.append(alert)


class AlertDeduplicator(Protocol):
    def first_time(self, key: str, expires_at: int) -> bool:
        """Claim ``key`` atomically: True for the first caller only (e.g. a DynamoDB conditional put)."""
        ...

    def forget(self, key: str) -> None:
        """Release a claim whose alert or action failed, so the retry of the batch can claim it again."""
        ...


class InMemoryDeduplicator:
    def __init__(self) -> None:
        self.claimed: dict[str, int] = {}

    def first_time(self, key: str, expires_at: int) -> bool:
        if key in self.claimed:
            return False
        self.claimed[key] = expires_at
        return True

    def forget(self, key: str) -> None:
        self.claimed.pop(key, None)


def _decimal(value: Decimal | None) -> str | None:
    return plain_decimal(value, DETAIL_PLACES)


ALERT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:costbrake:alert:1",
    "title": "costbrake alert",
    "$defs": {
        "decimal": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
        "spenders": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "cost_usd"],
                "properties": {"name": {"type": "string"}, "cost_usd": {"$ref": "#/$defs/decimal"}},
                "additionalProperties": False,
            },
        },
    },
    "type": "object",
    "required": [
        "schema_version",
        "alert_id",
        "type",
        "severity",
        "scope",
        "feature",
        "window",
        "window_start",
        "window_end",
        "generated_at",
        "current_usd",
        "limit_usd",
        "utilization",
        "top_users",
        "top_features",
        "summary",
        "details",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "alert_id": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
        "type": {"enum": [*(t.value for t in AnomalyType), SWITCH_FLIP, USER_BLOCK, *RECONCILIATION_TYPES]},
        "severity": {"enum": [s.value for s in Severity]},
        "scope": {"type": "string"},
        "feature": {"type": "string"},
        "window": {"type": "string", "pattern": "^(h|d|m)#"},
        "window_start": {"type": "string", "format": "date-time"},
        "window_end": {"type": "string", "format": "date-time"},
        "generated_at": {"type": "string", "format": "date-time"},
        "current_usd": {"anyOf": [{"$ref": "#/$defs/decimal"}, {"type": "null"}]},
        "limit_usd": {"anyOf": [{"$ref": "#/$defs/decimal"}, {"type": "null"}]},
        "utilization": {"anyOf": [{"$ref": "#/$defs/decimal"}, {"type": "null"}]},
        "top_users": {"$ref": "#/$defs/spenders"},
        "top_features": {"$ref": "#/$defs/spenders"},
        "summary": {"type": "string"},
        "details": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
