"""DESIGN's incident, replayed small enough for CI, through the real gateway, pipeline and ledger.

Run as the CLI command a user would run, in its own process (the replay brings its own in-process moto).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from costbrake.operations.budgets import DEFAULT_TIERS
from costbrake.simulate.traffic import INCIDENT_FEATURE, QUICK_SHAPE


def test_given_normal_days_then_the_incident_when_replayed_then_caught_within_the_hour_and_bounded(tmp_path):
    """Also the seeds' literal case: the provider key used directly, outside the gateway. Only the provider's own
    reports show it; the daily reconciler raises the first `unguarded_spend` alert within one simulated day."""
    cost_report = tmp_path / "report.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "costbrake.cli",
            "simulate",
            "incident",
            "--quick",
            "--json",
            "--report",
            "json",
            "--report-out",
            str(cost_report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"},
    ).stdout
    report = json.loads(out[out.index('{\n  "normal_calls"') :])

    assert report["normal_calls"] > 100 and report["incident_calls"] > 100
    assert report["false_alerts"] == []
    assert report["minutes_to_first_alert"] is not None and report["minutes_to_first_alert"] <= 60
    assert report["minutes_to_first_action"] is not None and report["minutes_to_first_action"] <= 60
    # Each power user is on the pro tier: at most its daily cap per incident day, whatever they send.
    pro_day = DEFAULT_TIERS["pro"].day_usd
    assert pro_day is not None
    cap = pro_day * QUICK_SHAPE.power_users * QUICK_SHAPE.incident_days
    spend = Decimal(report["incident_spend_usd"])
    assert 0 < spend <= cap
    assert spend < Decimal(report["counterfactual_spend_usd"]) / 2
    # Spend on the provider key outside the gateway: found by reconciliation within one simulated day.
    assert report["outside_calls"] > 0 and Decimal(report["outside_spend_usd"]) > 0
    assert report["minutes_to_first_unguarded_alert"] is not None
    assert report["minutes_to_first_unguarded_alert"] <= 24 * 60
    assert any(" critical unguarded_spend provider#anthropic: " in line for line in report["incident_alerts"])

    # The cost report of the replay's last 7 days, read back from the call records and the alert log.
    week = json.loads(cost_report.read_text())
    (deep,) = [f for f in week["features"] if f["name"] == INCIDENT_FEATURE]
    assert Decimal(deep["cost_usd"]) == spend  # every served incident call, as priced in its response header
    assert week["top_users"][0]["user_id"].startswith("power-")
    assert {"zscore", "user_spike", "user_block", "unguarded_spend"} <= {a["type"] for a in week["anomalies"]}
    # The normal days reconcile exactly (every call went through costbrake); the incident day does not.
    by_day = {line["day"]: line for line in week["reconciliation"]["lines"] if line["provider"] == "anthropic"}
    assert by_day and all(Decimal(line["unguarded_usd"]) == 0 for day, line in by_day.items() if day < "2026-10-04")
    assert by_day["2026-10-04"]["status"] == "unguarded"
