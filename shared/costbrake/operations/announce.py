"""The alerts that announce operators' actions, published and logged like the pipeline's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from costbrake.config import Settings
from costbrake.dal.alert_log import AlertLog
from costbrake.pipeline.alerts import Alert, SnsPublisher, alert_id
from costbrake.pipeline.anomaly import Severity
from costbrake.windows import Window, span


def operator_alert(
    type_: str, severity: Severity, scope: str, now: datetime, summary: str, details: dict[str, str]
) -> Alert:
    """The alert announcing an operator's action (who/why in ``details``, when in ``generated_at``)."""
    return Alert(
        alert_id=alert_id(f"operator#{type_}#{scope}#{now.isoformat()}"),
        type=type_,
        severity=severity,
        scope=scope,
        window=span(Window.HOUR, now),
        generated_at=now,
        summary=summary,
        details={**details, "at": now.isoformat(), "source": "operator"},
    )


def announce(settings: Settings, alert_log: AlertLog, alert: Alert, sns: Any = None) -> str:
    """Publish ``alert`` on the deployment's topic, if it has one, and keep it in the ledger's alert log (what
    reports list). Returns where it went, for the operator."""
    if settings.alert_topic_arn:
        if sns is None:
            import boto3  # only operators' commands publish: no boto3 client at import time

            sns = boto3.client("sns", region_name=settings.aws_region)
        SnsPublisher(sns, settings.alert_topic_arn).publish(alert)
        where = f"alert published to {settings.alert_topic_arn}"
    else:
        where = (
            "no alert topic configured (--stack NAME or COSTBRAKE_ALERT_TOPIC_ARN): "
            "the alert was only kept in the ledger's alert log"
        )
    alert_log.log_alert(alert.to_message(), alert.generated_at)
    return where
