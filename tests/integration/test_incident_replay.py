"""DESIGN's incident, replayed small enough for CI, through the real gateway, pipeline and ledger.

Run as the CLI command a user would run, in its own process (the replay brings its own in-process moto).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from costbrake.operations import DEFAULT_TIERS
from costbrake.simulate.traffic import INCIDENT_FEATURE, QUICK_SHAPE


def test_given_normal_days_then_the_incident_when_replayed_then_caught_within_the_hour_and_bounded(tmp_path):
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

    # The cost report of the replay's last 7 days, read back from the call records and the alert log.
    week = json.loads(cost_report.read_text())
    (deep,) = [f for f in week["features"] if f["name"] == INCIDENT_FEATURE]
    assert Decimal(deep["cost_usd"]) == spend  # every served incident call, as priced in its response header
    assert week["top_users"][0]["user_id"].startswith("power-")
    assert {"zscore", "user_spike", "user_block"} <= {a["type"] for a in week["anomalies"]}
