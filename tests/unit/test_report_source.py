"""What reports read from the tables: a period's calls (calls-by-day index), the alert log, the inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from costbrake.dal.calls import call_day_bucket
from costbrake.dal.models import CALL_DAY_BUCKETS
from costbrake.pipeline.alerts import InMemoryPublisher, LoggingPublisher, alert_for
from costbrake.pipeline.anomaly import Anomaly, AnomalyType, Severity
from costbrake.reports.source import collect_inputs
from costbrake.windows import Window, span
from costbrake.wiring import Stores

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.fixture
def seed_calls(stores: Stores, call_record):
    def seed(stamps: list[datetime]) -> list[str]:
        ids = []
        for n, stamp in enumerate(stamps):
            request_id = f"req-{n:04d}"
            stores.spend.settle(request_id, [], Decimal("0.01"), call_record(request_id=request_id, timestamp=stamp))
            ids.append(request_id)
        return ids

    return seed


def test_given_many_request_ids_when_bucketed_then_every_bucket_is_used_and_the_day_leads():
    buckets = {call_day_bucket(NOW.date(), f"req-{n}") for n in range(200)}

    assert buckets == {f"2026-11-24#{b}" for b in range(CALL_DAY_BUCKETS)}


def test_given_calls_over_three_days_when_reading_a_period_then_exactly_those_inside_it(stores, seed_calls):
    stamps = [NOW - timedelta(hours=h) for h in range(0, 72, 3)]
    ids = seed_calls(stamps)
    start = NOW - timedelta(hours=36)

    found = list(stores.calls.calls_between(start, NOW))

    expected = {rid for rid, stamp in zip(ids, stamps, strict=True) if start <= stamp < NOW}
    assert {c.request_id for c in found} == expected
    assert len(found) == len(expected) == 12  # hours 3..36 step 3; NOW itself is outside [start, NOW)


def test_given_calls_within_the_last_second_when_reading_up_to_now_then_they_are_included(stores, seed_calls):
    ids = seed_calls([NOW - timedelta(milliseconds=300), NOW, NOW + timedelta(milliseconds=300)])

    found = list(stores.calls.calls_between(NOW - timedelta(hours=1), NOW + timedelta(milliseconds=100)))

    assert sorted(c.request_id for c in found) == ids[:2]


def test_given_no_calls_when_reading_a_period_then_empty(stores):
    assert list(stores.calls.calls_between(NOW - timedelta(days=7), NOW)) == []


def _anomaly(hours_ago: int) -> Anomaly:
    hour = span(Window.HOUR, NOW - timedelta(hours=hours_ago))
    return Anomaly(
        type=AnomalyType.USER_SPIKE,
        severity=Severity.WARNING,
        scope="user#alice",
        window=hour,
        current=Decimal("12.5"),
        limit=Decimal("10"),
        utilization=Decimal("1.25"),
        summary=f"alice spent $12.50 in {hour.key}",
    )


def test_given_published_alerts_when_logged_then_reports_read_them_newest_first_within_the_period(stores):
    inner = InMemoryPublisher()
    publisher = LoggingPublisher(inner, stores.alerts)
    for hours_ago in (400, 300, 30, 2):  # 400 h ago is outside 14 days
        anomaly = _anomaly(hours_ago)
        publisher.publish(alert_for(anomaly, anomaly.window.start + timedelta(minutes=5)))

    logged = stores.alerts.alerts_between(NOW - timedelta(days=14), NOW)

    assert len(inner.published) == 4
    assert [a["window"] for a in logged] == [_anomaly(h).window.key for h in (2, 30, 300)]
    assert logged[0]["current_usd"] == "12.5" and logged[0]["type"] == "user_spike"


def test_given_a_deployment_when_collecting_report_inputs_then_calls_budgets_and_alerts_of_the_period(
    stores, settings, seed_calls
):
    seed_calls([NOW - timedelta(days=d, hours=1) for d in range(10)])
    LoggingPublisher(InMemoryPublisher(), stores.alerts).publish(alert_for(_anomaly(5), NOW - timedelta(hours=5)))

    inputs = collect_inputs(stores, settings, NOW, days=7)

    assert inputs.start == NOW - timedelta(days=7)
    assert len(inputs.calls) == 7
    assert [b.scope for b in inputs.budgets] == ["global"]  # no feature budgets configured here
    assert [a["scope"] for a in inputs.alerts] == ["user#alice"]
