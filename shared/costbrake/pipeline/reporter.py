"""The weekly cost report, published as plain text on the alert topic under a message type of its own.

Its message attributes are those of the alerts (``type``, ``severity``, ``feature``), so subscription filter
policies written for alerts keep working and can take or leave the report (docs/alerts.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.pipeline.alerts import ALL_FEATURES, SUBJECT_MAX, SnsClient
from costbrake.pipeline.anomaly import Severity
from costbrake.reports.model import build_report
from costbrake.reports.source import collect_inputs
from costbrake.reports.text import render_text

if TYPE_CHECKING:
    from costbrake.wiring import Stores

REPORT_TYPE = "cost_report"
REPORT_SEVERITY = Severity.INFO
WEEK_DAYS = 7
# SNS takes at most 256 KiB per message, message attributes included; they need far less than the room kept.
MESSAGE_MAX_BYTES = 256 * 1024 - 4 * 1024
TRUNCATION_NOTE = (
    "\n[report truncated to fit an SNS message: the first {shown} of {total} bytes are shown; "
    "`costbrake report --days {days}` prints all of it]\n"
)


@dataclass(frozen=True)
class PublishedReport:
    message_id: str
    subject: str
    calls: int
    cost_usd: Decimal
    truncated: bool


def publish_weekly_report(
    stores: Stores,
    settings: Settings,
    clock: Clock,
    sns_client: SnsClient,
    topic_arn: str,
    days: int = WEEK_DAYS,
) -> PublishedReport:
    """Build the report of the ``days`` before now and publish it on ``topic_arn``."""
    report = build_report(collect_inputs(stores, settings, clock.now(), days))
    message, truncated = fit_message(render_text(report), days)
    subject = report_subject(report.start, report.end, days)
    response = sns_client.publish(
        TopicArn=topic_arn,
        Subject=subject,
        Message=message,
        MessageAttributes=report_attributes(),
    )
    return PublishedReport(
        message_id=str(response.get("MessageId", "")),
        subject=subject,
        calls=report.totals.calls,
        cost_usd=report.totals.cost_usd,
        truncated=truncated,
    )


def report_subject(start: datetime, end: datetime, days: int) -> str:
    """``costbrake weekly cost report 2026-11-17..2026-11-24``: ASCII, one line, at most 100 characters."""
    period = "weekly" if days == WEEK_DAYS else f"{days}-day"
    text = f"costbrake {period} cost report {start:%Y-%m-%d}..{end:%Y-%m-%d}"
    return text.encode("ascii", "replace").decode("ascii")[:SUBJECT_MAX]


def report_attributes() -> dict[str, dict[str, str]]:
    values = {"type": REPORT_TYPE, "severity": REPORT_SEVERITY.value, "feature": ALL_FEATURES}
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


def fit_message(text: str, days: int, max_bytes: int = MESSAGE_MAX_BYTES) -> tuple[str, bool]:
    """The text if it fits in ``max_bytes`` of UTF-8, else its first whole lines and a note saying so."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text, False
    # The note's figures have at most as many digits as the total, so this is the room it can take.
    room = max_bytes - len(TRUNCATION_NOTE.format(shown=len(encoded), total=len(encoded), days=days).encode("utf-8"))
    if room <= 0:
        raise ValueError(f"{max_bytes} bytes leave no room for the report")
    head = encoded[:room].decode("utf-8", errors="ignore")  # never half a character
    if "\n" in head:
        head = head[: head.rindex("\n") + 1]  # nor half a line
    shown = len(head.encode("utf-8"))
    return head + TRUNCATION_NOTE.format(shown=shown, total=len(encoded), days=days), True
