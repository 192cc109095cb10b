"""CloudWatch metrics (EMF) for cost, tokens, calls and rejections, by feature and model.

One ``EphemeralMetrics`` per event: no state is shared between invocations (or between the threads of the
local stack), and each event's dimensions stay its own. The names and dimension sets below are the contract of
docs/metrics.md and of the dashboard in template.yaml (tests/infra checks the dashboard against them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from costbrake.errors import AuthenticationFailed, CostbrakeError, LedgerUnavailable
from costbrake.policy import feature_of
from costbrake.records import CallRecord

if TYPE_CHECKING:
    from costbrake.gateway.service import Gateway

NAMESPACE = "Costbrake"
SERVICE = "gateway"  # the "service" dimension of every metric below
UNKNOWN = "unknown"  # the label of a feature or model that cannot be told

# Metric -> unit, per event kind.
CALL_METRICS: Mapping[str, MetricUnit] = {
    "Calls": MetricUnit.Count,
    # Metrics are for dashboards and alarms; the ledger keeps the exact Decimal amount.
    "CostUsd": MetricUnit.NoUnit,
    "InputTokens": MetricUnit.Count,
    "OutputTokens": MetricUnit.Count,
    "ProviderErrors": MetricUnit.Count,
    "Truncations": MetricUnit.Count,
    # A call settled above what was reserved for it: a bound was wrong (alarmed in template.yaml).
    "SettledAboveReserved": MetricUnit.Count,
    # Cost reducers (issue 12): calls served from the response cache and what they saved (the cached answer's
    # cost), cacheable calls that missed, and histories truncated to the feature's input cap.
    "CacheHits": MetricUnit.Count,
    "CacheMisses": MetricUnit.Count,
    "SavedUsd": MetricUnit.NoUnit,
    "HistoryTruncations": MetricUnit.Count,
}
REJECTION_METRICS: Mapping[str, MetricUnit] = {"Rejections": MetricUnit.Count}
# Every metric is published under each of its dimension sets: the detailed set for dashboards (SEARCH), the
# coarser ones so that totals are plain metrics an alarm can watch. The first set is the EMF primary set.
CALL_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    ("feature", "model", "service"),
    ("feature", "service"),
    ("service",),
)
REJECTION_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    ("feature", "model", "reason", "service"),
    ("reason", "service"),
)


def emitted_metrics() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Every metric name this module emits -> its dimension sets (namespace ``NAMESPACE``)."""
    return {name: CALL_DIMENSION_SETS for name in CALL_METRICS} | {
        name: REJECTION_DIMENSION_SETS for name in REJECTION_METRICS
    }


def call_settled(record: CallRecord) -> None:
    values: dict[str, float] = {
        "Calls": 1,
        "CostUsd": float(record.cost_usd),
        "InputTokens": record.input_tokens + record.cache_read_tokens,
        "OutputTokens": record.output_tokens,
    }
    if record.status != "ok":
        values["ProviderErrors"] = 1
    if record.truncated:
        values["Truncations"] = 1
    if record.cost_usd > record.reserved_usd:
        values["SettledAboveReserved"] = 1
    if record.cache_hit:
        values["CacheHits"] = 1
        values["SavedUsd"] = float(record.saved_usd)
    elif record.cache_status == "miss":
        values["CacheMisses"] = 1
    if record.truncated_messages:
        values["HistoryTruncations"] = 1
    labels = {"feature": _label(record.feature), "model": _label(record.model)}
    _emit(CALL_METRICS, values, labels, CALL_DIMENSION_SETS)


def rejected(error: CostbrakeError, feature: str | None = None, model: str | None = None) -> None:
    """Count a refused request by reason, and by feature and model where they are known (else ``unknown``)."""
    labels = {"feature": _label(feature), "model": _label(model), "reason": error.code or type(error).__name__}
    _emit(REJECTION_METRICS, {"Rejections": 1}, labels, REJECTION_DIMENSION_SETS)


def rejection_labels(
    error: CostbrakeError, headers: Mapping[str, str], body: bytes, gateway: Gateway | None
) -> tuple[str | None, str | None]:
    """Feature and model of a refused request, told the way the gateway tells them, as far as that is safe.

    Nothing is told for an unauthenticated caller (anyone could mint dimension values, each a billed metric) or
    while the ledger is unreachable (no second slow lookup). Otherwise the key and settings come from the
    gateway's caches, filled by this very request. The model is a priced model's name (a dated snapshot counts
    under its base model) so that clients cannot inflate the metric's cardinality with invented names.
    """
    if gateway is None or isinstance(error, AuthenticationFailed | LedgerUnavailable):
        return None, None
    try:
        key = gateway.authenticate(headers)
        prices = gateway.price_table(gateway.snapshot())
    except CostbrakeError:
        return None, None
    feature = feature_of(headers, key, gateway.snapshot())
    requested = _requested_model(body)
    model = prices.base_model(prices.get(requested).model) if requested is not None and requested in prices else None
    return feature, model


def _requested_model(body: bytes) -> str | None:
    try:  # the body already failed or passed the gateway's checks; here it only may not break the answer
        parsed: Any = json.loads(body or b"null")
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep to parse
        return None
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else None


def _label(value: str | None) -> str:
    # Powertools drops a dimension with an empty value, which would move the metric to another dimension set.
    return value if value and value.strip() else UNKNOWN


def _emit(
    units: Mapping[str, MetricUnit],
    values: Mapping[str, float],
    labels: Mapping[str, str],
    dimension_sets: tuple[tuple[str, ...], ...],
) -> None:
    labels = {**labels, "service": SERVICE}
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    primary, *others = dimension_sets
    for name in primary:
        metrics.add_dimension(name, labels[name])
    for dimension_set in others:
        metrics.add_dimensions(**{name: labels[name] for name in dimension_set})
    for name, value in values.items():
        metrics.add_metric(name, units[name], value)
    metrics.flush_metrics()
