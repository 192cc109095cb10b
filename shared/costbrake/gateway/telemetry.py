"""CloudWatch metrics (EMF) for cost, tokens, calls and rejections, by feature and model.

One ``EphemeralMetrics`` per event: no state is shared between invocations (or between the threads of the
local stack), and each event's dimensions stay its own.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from costbrake.errors import CostbrakeError
from costbrake.records import CallRecord

NAMESPACE = "Costbrake"


def call_settled(record: CallRecord) -> None:
    metrics = EphemeralMetrics(namespace=NAMESPACE, service="gateway")
    metrics.add_dimension("feature", record.feature)
    metrics.add_dimension("model", record.model)
    metrics.add_metric("Calls", MetricUnit.Count, 1)
    # Metrics are for dashboards and alarms; the ledger keeps the exact Decimal amount.
    metrics.add_metric("CostUsd", MetricUnit.NoUnit, float(record.cost_usd))
    metrics.add_metric("InputTokens", MetricUnit.Count, record.input_tokens + record.cache_read_tokens)
    metrics.add_metric("OutputTokens", MetricUnit.Count, record.output_tokens)
    if record.status != "ok":
        metrics.add_metric("ProviderErrors", MetricUnit.Count, 1)
    if record.truncated:
        metrics.add_metric("Truncations", MetricUnit.Count, 1)
    metrics.flush_metrics()


def rejected(error: CostbrakeError) -> None:
    metrics = EphemeralMetrics(namespace=NAMESPACE, service="gateway")
    metrics.add_dimension("reason", error.code or type(error).__name__)
    metrics.add_metric("Rejections", MetricUnit.Count, 1)
    metrics.flush_metrics()
